package export

import (
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// formulaTriggers are the characters that make a spreadsheet read a cell as a formula
// when they begin it (OWASP "CSV Injection": =, +, -, @, TAB, CR, LF). A text cell
// beginning with one is prefixed with formulaPrefix. docs/EXPORTS.md lists them (a
// test checks).
const (
	formulaTriggers = "=+-@\t\r\n"
	formulaPrefix   = "'"
)

// cellSeparators are the characters that a spreadsheet set up for another dialect
// (semicolon-separated in many locales, tab-separated when pasted) splits a cell on.
// A cell where one of them is followed by a formula trigger would put the formula at
// the start of a cell there, so it is quoted: quotes keep the cell whole.
const cellSeparators = ";\t"

// unsafeRune reports the characters no export text keeps: C0 controls other than
// TAB, LF and CR (which CSV quoting carries and HTML reads as white space), DEL, C1
// controls, noncharacters, and the Unicode bidirectional formatting characters, which
// reorder how the text around them is displayed (a name with U+202E reads backwards).
func unsafeRune(r rune) bool {
	switch {
	case r == '\t' || r == '\n' || r == '\r':
		return false
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r >= 0xfdd0 && r <= 0xfdef, r&0xfffe == 0xfffe:
		return true
	}
	switch r {
	case '\u061c', '\u200e', '\u200f', // ALM, LRM, RLM
		'\u202a', '\u202b', '\u202c', '\u202d', '\u202e', // LRE, RLE, PDF, LRO, RLO
		'\u2066', '\u2067', '\u2068', '\u2069': // LRI, RLI, FSI, PDI
		return true
	}
	return false
}

// stripUnsafe returns s without the characters unsafeRune reports; invalid UTF-8
// becomes U+FFFD. Clean text (nearly all) is returned as is, without copying.
func stripUnsafe(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unsafeRune(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return -1
		}
		return r
	}, s)
}

// neutralize makes a text cell safe to open in a spreadsheet: unsafe characters are
// dropped, and a cell that then begins with a formula trigger gets formulaPrefix, so
// that it is read as text. Cells this package formats (numbers, booleans, timestamps)
// are not text: a negative number stays a number.
func neutralize(s string) string {
	s = stripUnsafe(s)
	if s != "" && strings.IndexByte(formulaTriggers, s[0]) >= 0 {
		return formulaPrefix + s
	}
	return s
}

// csvWriter writes RFC 4180 records as encoding/csv does (comma, LF line ends,
// quoting a cell only when it must), and also quotes a cell where a separator of
// another dialect is followed by a formula trigger (see cellSeparators). Each record
// is one Write to the underlying writer.
type csvWriter struct {
	w   io.Writer
	buf []byte
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: w} }

// Write writes one record.
func (w *csvWriter) Write(record []string) error {
	b := w.buf[:0]
	for i, field := range record {
		if i > 0 {
			b = append(b, ',')
		}
		if !needsQuotes(field) {
			b = append(b, field...)
			continue
		}
		b = append(b, '"')
		for {
			j := strings.IndexByte(field, '"')
			if j < 0 {
				break
			}
			b = append(b, field[:j+1]...)
			b = append(b, '"')
			field = field[j+1:]
		}
		b = append(b, field...)
		b = append(b, '"')
	}
	b = append(b, '\n')
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

// needsQuotes is encoding/csv's rule (a quote, comma, CR or LF anywhere, a leading
// space, or the field `\.`) plus a formula trigger after a separator of another
// dialect.
func needsQuotes(field string) bool {
	if field == "" {
		return false
	}
	if field == `\.` || strings.ContainsAny(field, "\"\r\n,") {
		return true
	}
	for i := 0; i+1 < len(field); i++ {
		if strings.IndexByte(cellSeparators, field[i]) >= 0 && strings.IndexByte(formulaTriggers, field[i+1]) >= 0 {
			return true
		}
	}
	r, _ := utf8.DecodeRuneInString(field)
	return unicode.IsSpace(r)
}
