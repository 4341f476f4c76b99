package kubernetes_test

import (
	"regexp"
	"strings"
)

// codeLine is one command of a runbook's fenced bash blocks.
type codeLine struct {
	Line int    // of the command's first line
	Text string // continuation lines joined
}

// bashCommands returns the commands of doc's ```bash blocks, continuation lines joined.
func bashCommands(doc string) []codeLine {
	var cmds []codeLine
	var cur strings.Builder
	in, start := false, 0
	for i, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```bash"):
			in = true
		case in && trimmed == "```":
			in = false
		case in:
			if cur.Len() == 0 {
				start = i + 1
			}
			if l, ok := strings.CutSuffix(trimmed, `\`); ok {
				cur.WriteString(l + " ")
				continue
			}
			cur.WriteString(trimmed)
			if s := cur.String(); strings.TrimSpace(s) != "" {
				cmds = append(cmds, codeLine{start, s})
			}
			cur.Reset()
		}
	}
	return cmds
}

// placeholder is a runbook's <value to fill in>.
var placeholder = regexp.MustCompile(`<[a-zA-Z][a-zA-Z0-9_-]*>`)

// subst stands for a command substitution's output in the words of its command.
const subst = "SUBST"

// shellCommands splits one line of shell into simple commands, each a list of words with
// the quotes removed. A command substitution $(...) is a command of its own, and the
// word subst in its place; redirections and their targets are dropped; a comment or a
// here-document ends the line. Enough shell for runbook one-liners, not a parser.
func shellCommands(line string) [][]string {
	l := &lexer{s: placeholder.ReplaceAllString(line, "placeholder")}
	l.commands(false)
	return l.out
}

type lexer struct {
	s   string
	i   int
	out [][]string
}

// commands reads commands until the end of the line or, in a substitution, its ")".
func (l *lexer) commands(nested bool) {
	var cmd []string
	var word strings.Builder
	inWord, dropWord := false, false
	flushWord := func() {
		if inWord && !dropWord {
			cmd = append(cmd, word.String())
		}
		if inWord {
			dropWord = false
		}
		word.Reset()
		inWord = false
	}
	flushCmd := func() {
		flushWord()
		if len(cmd) > 0 {
			l.out = append(l.out, cmd)
		}
		cmd = nil
	}
	defer flushCmd()
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch {
		case c == ' ' || c == '\t':
			flushWord()
		case c == '#' && !inWord:
			l.i = len(l.s)
		case c == '\\' && l.i < len(l.s):
			word.WriteByte(l.s[l.i])
			l.i++
			inWord = true
		case c == '\'':
			end := strings.IndexByte(l.s[l.i:], '\'')
			if end < 0 {
				end = len(l.s) - l.i
			}
			word.WriteString(l.s[l.i : l.i+end])
			l.i = min(l.i+end+1, len(l.s))
			inWord = true
		case c == '"':
			l.doubleQuoted(&word)
			inWord = true
		case c == '$' && l.i < len(l.s) && l.s[l.i] == '(':
			l.i++
			l.commands(true)
			word.WriteString(subst)
			inWord = true
		case c == ')' && nested:
			return
		case c == '|' || c == ';' || c == '&':
			flushCmd()
		case c == '>' || c == '<':
			if strings.Trim(word.String(), "0123456789") == "" {
				word.Reset() // the descriptor of 2>, not a word
				inWord = false
			}
			flushWord()
			if c == '<' && l.i < len(l.s) && l.s[l.i] == '<' {
				l.i = len(l.s) // a here-document: its lines are not commands
				continue
			}
			for l.i < len(l.s) && (l.s[l.i] == '>' || l.s[l.i] == '&') {
				l.i++
			}
			dropWord = true // the target
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
}

// doubleQuoted reads up to the closing quote; substitutions inside are commands too.
func (l *lexer) doubleQuoted(word *strings.Builder) {
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		switch {
		case c == '"':
			return
		case c == '\\' && l.i < len(l.s):
			word.WriteByte(l.s[l.i])
			l.i++
		case c == '$' && l.i < len(l.s) && l.s[l.i] == '(':
			l.i++
			l.commands(true)
			word.WriteString(subst)
		default:
			word.WriteByte(c)
		}
	}
}

// kubectlCommands returns the kubectl commands of a runbook, each its arguments after
// "kubectl".
func kubectlCommands(doc string) []kubectlCommand {
	var out []kubectlCommand
	for _, c := range bashCommands(doc) {
		for _, words := range shellCommands(c.Text) {
			for len(words) > 0 && strings.Contains(words[0], "=") { // VAR=value kubectl ...
				words = words[1:]
			}
			if len(words) > 0 && words[0] == "kubectl" {
				out = append(out, kubectlCommand{Line: c.Line, Text: c.Text, Args: words[1:]})
			}
		}
	}
	return out
}

type kubectlCommand struct {
	Line int
	Text string   // the whole line, for messages
	Args []string // after "kubectl"
}
