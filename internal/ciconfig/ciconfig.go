// Package ciconfig reads a .gitlab-ci.yml and measures what converting it to GitHub
// Actions involves: how many jobs, stages and includes it has, which GitLab-specific
// constructs it uses, and a 0-100 complexity score derived from those; and which other
// projects it depends on (include:project, trigger:project).
//
// The complexity score is the sum of
//
//	jobs       2 points per job,     at most 40 (20 jobs)
//	stages     2 points per stage,   at most 10 (5 stages)
//	includes   3 points per include, at most 15 (5 includes)
//	constructs trigger 8, needs 6, rules 6, dind 6, include 4, extends 3, services 3, tags 2
//
// capped at 100. Every term only grows with its input, so the score is monotone: a file
// with more jobs, stages, includes or constructs never scores lower. An invalid file
// scores 0.
package ciconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/gl2gh/discovery-agent/internal/inventory"
)

// Constructs reported in inventory.CI.Constructs.
const (
	ConstructDind     = "dind"
	ConstructExtends  = "extends"
	ConstructInclude  = "include"
	ConstructNeeds    = "needs"
	ConstructRules    = "rules"
	ConstructServices = "services"
	ConstructTags     = "tags"
	ConstructTrigger  = "trigger"
)

// Score weights; see the package comment.
const (
	pointsPerJob     = 2
	maxJobPoints     = 40
	pointsPerStage   = 2
	maxStagePoints   = 10
	pointsPerInclude = 3
	maxIncludePoints = 15
)

// constructWeight is what each construct adds to the complexity score. Constructs that
// have no direct GitHub Actions equivalent (child pipelines, DAG needs across stages,
// rules, Docker-in-Docker) weigh more.
var constructWeight = map[string]int{
	ConstructTrigger:  8,
	ConstructNeeds:    6,
	ConstructRules:    6,
	ConstructDind:     6,
	ConstructInclude:  4,
	ConstructExtends:  3,
	ConstructServices: 3,
	ConstructTags:     2,
}

// reserved are the top-level keywords that are not jobs.
var reserved = map[string]bool{
	"default":       true,
	"include":       true,
	"stages":        true,
	"variables":     true,
	"workflow":      true,
	"image":         true,
	"services":      true,
	"cache":         true,
	"before_script": true,
	"after_script":  true,
	"types":         true,
}

// jobConstructs are the keys that mark a construct when they appear in a job or default.
var jobConstructs = []string{ConstructExtends, ConstructNeeds, ConstructRules, ConstructServices, ConstructTags, ConstructTrigger}

// Limits on what Parse reads, so that a hostile file costs little: GitLab itself
// refuses larger or deeper files (its max_yaml_size_bytes, 2 MB by default, bounds
// the parsed size, which exceeds the file's; max_yaml_depth is 100 by default).
const (
	// MaxSize is the largest file parsed, in bytes.
	MaxSize = 2 << 20
	// MaxDepth bounds the nesting of mappings and sequences, aliases expanded.
	MaxDepth = 150
	// MaxNodes bounds the nodes once aliases are expanded: the "billion laughs"
	// bound. A pipeline of a thousand jobs has some tens of thousands.
	MaxNodes = 250_000
)

// ErrLimit marks a file over one of the limits.
var ErrLimit = errors.New("over a limit")

// Parse measures a .gitlab-ci.yml. Invalid YAML, a document that is not a mapping, or
// a file over a limit gives CI{Invalid: true}; Analyze says why.
func Parse(data []byte) inventory.CI {
	ci, _ := Analyze(data)
	return ci
}

// Analyze is Parse that also returns why a file is invalid (errors.Is(err, ErrLimit)
// when it is over a limit).
func Analyze(data []byte) (inventory.CI, error) {
	top, err := document(data)
	if err != nil {
		return inventory.CI{Invalid: true}, fmt.Errorf("ci config: %w", err)
	}
	return analyze(top, nil), nil
}

// analyze measures a decoded configuration; includes are include:project targets
// found outside it (in the local files it includes).
func analyze(top map[string]any, includes []string) inventory.CI {
	ci := inventory.CI{Constructs: []string{}}
	found := map[string]bool{}
	var triggers []string

	for key, val := range top {
		switch {
		case key == "include":
			ci.Includes = countIncludes(val)
			includes = append(includes, includeProjects(val)...)
			if val != nil {
				found[ConstructInclude] = true
			}
			// Conditional includes (include:rules) are rules too.
			for _, entry := range asList(val) {
				if m, ok := asMap(entry); ok && m["rules"] != nil {
					found[ConstructRules] = true
				}
			}
		case key == "stages":
			ci.Stages = len(asList(val))
		case key == "types":
			// The deprecated spelling of stages; stages wins when both are present.
			if _, ok := top["stages"]; !ok {
				ci.Stages = len(asList(val))
			}
		case key == "image":
			markImage(val, found)
		case key == "services":
			found[ConstructServices] = true
			markServices(val, found)
		case key == "workflow":
			if m, ok := asMap(val); ok && m["rules"] != nil {
				found[ConstructRules] = true
			}
		case key == "default":
			markJob(val, found)
		case reserved[key]:
		case strings.HasPrefix(key, "."):
			// Hidden jobs are templates: not jobs, but what they hold ends up in the
			// jobs that extend or merge them.
			markJob(val, found)
		default:
			ci.Jobs++
			markJob(val, found)
		}
	}

	for key, val := range top {
		if job, ok := asMap(val); ok && !reserved[key] {
			tr, inc := triggerTargets(job)
			triggers, includes = append(triggers, tr...), append(includes, inc...)
		}
	}
	ci.IncludeProjects, ci.TriggerProjects = sortedUnique(includes), sortedUnique(triggers)

	for c := range found {
		ci.Constructs = append(ci.Constructs, c)
	}
	slices.Sort(ci.Constructs)
	ci.Complexity = Complexity(ci)
	return ci
}

// Complexity scores a parsed configuration from its jobs, stages, includes and
// constructs as the package comment describes. Unknown constructs add nothing.
func Complexity(ci inventory.CI) int {
	if ci.Invalid {
		return 0
	}
	score := min(max(ci.Jobs, 0)*pointsPerJob, maxJobPoints) +
		min(max(ci.Stages, 0)*pointsPerStage, maxStagePoints) +
		min(max(ci.Includes, 0)*pointsPerInclude, maxIncludePoints)
	seen := map[string]bool{}
	for _, c := range ci.Constructs {
		if !seen[c] {
			seen[c] = true
			score += constructWeight[c]
		}
	}
	return min(score, 100)
}

// document decodes the pipeline configuration's top-level mapping. A file with a
// `spec:` header document (pipeline inputs) has its configuration in the second
// document.
func document(data []byte) (map[string]any, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrLimit, len(data), MaxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	first, err := decode(dec)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	top, ok := asMap(first)
	if !ok {
		return nil, errors.New("not a mapping")
	}
	if _, isHeader := top["spec"]; isHeader && len(top) == 1 {
		second, err := decode(dec)
		switch {
		case errors.Is(err, io.EOF):
			// Only a header: an empty pipeline, but valid YAML.
			return map[string]any{}, nil
		case err != nil:
			return nil, fmt.Errorf("decode after spec header: %w", err)
		}
		if top, ok = asMap(second); !ok {
			return nil, errors.New("not a mapping after spec header")
		}
	}
	return top, nil
}

// decode reads the next document as nodes, which keeps aliases unexpanded, checks
// the limits on them, and only then decodes it into values.
func decode(dec *yaml.Decoder) (any, error) {
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		return nil, err
	}
	if _, err := (&limits{measured: map[*yaml.Node]size{}}).measure(&n, 0); err != nil {
		return nil, err
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// size is what a node expands to: its nodes and the height of its nesting.
type size struct{ nodes, height int }

// limits measures a document against MaxNodes and MaxDepth with aliases expanded.
// Each node is measured once (an alias reuses its anchor's size), so measuring a
// billion laughs takes as long as reading it. An alias to an enclosing node expands
// forever: it fails MaxDepth.
type limits struct {
	measured map[*yaml.Node]size
}

func (l *limits) measure(n *yaml.Node, depth int) (size, error) {
	if s, ok := l.measured[n]; ok {
		if depth+s.height > MaxDepth {
			return size{}, fmt.Errorf("%w: nesting deeper than %d levels", ErrLimit, MaxDepth)
		}
		return s, nil
	}
	var s size
	children := n.Content
	switch n.Kind {
	case yaml.AliasNode:
		children = []*yaml.Node{n.Alias}
	case yaml.MappingNode, yaml.SequenceNode:
		s.height = 1
	}
	if n.Kind != yaml.AliasNode && n.Kind != yaml.DocumentNode {
		s.nodes = 1
	}
	if depth+s.height > MaxDepth {
		return size{}, fmt.Errorf("%w: nesting deeper than %d levels", ErrLimit, MaxDepth)
	}
	childHeight := 0
	for _, c := range children {
		if c == nil {
			continue
		}
		cs, err := l.measure(c, depth+s.height)
		if err != nil {
			return size{}, err
		}
		if s.nodes += cs.nodes; s.nodes > MaxNodes {
			return size{}, fmt.Errorf("%w: more than %d nodes once aliases are expanded", ErrLimit, MaxNodes)
		}
		childHeight = max(childHeight, cs.height)
	}
	s.height += childHeight
	l.measured[n] = s
	return s, nil
}

// countIncludes counts include entries: a string is one file, a list its length, a
// mapping one entry.
func countIncludes(v any) int {
	switch v := v.(type) {
	case string:
		return 1
	case []any:
		return len(v)
	case map[string]any, map[any]any:
		return 1
	}
	return 0
}

// markJob records the constructs a job (or default, or template) uses.
func markJob(v any, found map[string]bool) {
	job, ok := asMap(v)
	if !ok {
		return
	}
	for _, c := range jobConstructs {
		if _, ok := job[c]; ok {
			found[c] = true
		}
	}
	markImage(job["image"], found)
	markServices(job["services"], found)
}

// markImage marks dind for an image given as a string or as {name: ...}.
func markImage(v any, found map[string]bool) {
	if isDind(imageName(v)) {
		found[ConstructDind] = true
	}
}

// markServices marks dind for any service, each a string or {name: ...}.
func markServices(v any, found map[string]bool) {
	for _, s := range asList(v) {
		markImage(s, found)
	}
}

func imageName(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any, map[any]any:
		m, _ := asMap(v)
		name, _ := m["name"].(string)
		return name
	}
	return ""
}

func isDind(name string) bool {
	return strings.Contains(strings.ToLower(name), "dind")
}

// asList returns v as a list: a sequence as is, a single scalar or mapping as one entry.
func asList(v any) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// asMap returns v as a string-keyed mapping. yaml.v3 decodes a mapping with a
// non-string key (e.g. `1:` or `true:`) as map[any]any; such keys are stringified.
func asMap(v any) (map[string]any, bool) {
	switch v := v.(type) {
	case map[string]any:
		return v, true
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, val := range v {
			m[fmt.Sprint(k)] = val
		}
		return m, true
	}
	return nil, false
}
