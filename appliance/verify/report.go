package verify

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Result is the outcome of one case.
type Result string

// The results of a case. Only Failed fails a verification.
const (
	// Healthy: applied, and healthy as the engine judges health.
	Healthy Result = "Healthy"
	// Applied: applied; its health cannot be judged without a node.
	Applied Result = "Applied"
	// Skipped: not checked, and the message says why (an Application in
	// the render, a SealedSecret without --sealing-keys).
	Skipped Result = "Skipped"
	// Failed: refused, not applied, or unhealthy; the message says why.
	Failed Result = "Failed"
)

// Case is one line of the report: an object, or a step that failed for a
// whole source (its render) or for everything (the server's start).
type Case struct {
	// Source is the Application's name, or the path rendered.
	Source  string `json:"source"`
	Group   string `json:"group,omitempty"`
	Version string `json:"version,omitempty"`
	// Kind is empty for a step.
	Kind      string `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Name is the object's name, or the step's ("render apps/overlays/dev").
	Name    string `json:"name"`
	Result  Result `json:"result"`
	Message string `json:"message,omitempty"`

	verdict verdict
	health  string // the last health message seen
}

// ref is Kind/namespace/name, or the step's name.
func (c *Case) ref() string {
	if c.Kind == "" {
		return c.Name
	}
	if c.Namespace == "" {
		return c.Kind + "/" + c.Name
	}
	return c.Kind + "/" + c.Namespace + "/" + c.Name
}

// Phase is one stage of a run and how long it took.
type Phase struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	Detail  string  `json:"detail,omitempty"`
}

// Report is the outcome of a verification.
type Report struct {
	// Root is the repository root the sources were read from.
	Root string `json:"root"`
	// WithNode: a node ran, so workloads were judged by their pods.
	WithNode bool `json:"withNode,omitempty"`
	// Passed is true when no case failed.
	Passed  bool    `json:"passed"`
	Seconds float64 `json:"seconds"`
	Phases  []Phase `json:"phases"`
	Cases   []*Case `json:"cases"`
	// Notes say what was not checked and why.
	Notes []string `json:"notes,omitempty"`
}

// Count returns how many cases have result r.
func (r *Report) Count(res Result) int {
	n := 0
	for _, c := range r.Cases {
		if c.Result == res {
			n++
		}
	}
	return n
}

func (r *Report) sources() []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range r.Cases {
		if !seen[c.Source] {
			seen[c.Source] = true
			out = append(out, c.Source)
		}
	}
	return out
}

// Summary is the report's last line, such as "PASSED: 5 objects: 3
// healthy, 2 applied (health not judged without a node) (6.1s)" or
// "FAILED: render apps/dev failed (0.1s)".
func (r *Report) Summary() string {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	var steps []string
	counts := map[Result]int{}
	objects := 0
	for _, c := range r.Cases {
		if c.Kind == "" {
			if c.Result == Failed {
				steps = append(steps, c.Name+" failed")
			}
			continue
		}
		objects++
		counts[c.Result]++
	}
	var parts []string
	for _, p := range []struct {
		res  Result
		text string
	}{
		{Healthy, "healthy"},
		{Applied, "applied (health not judged without a node)"},
		{Skipped, "skipped"},
		{Failed, "failed"},
	} {
		if n := counts[p.res]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, p.text))
		}
	}
	if objects > 0 {
		steps = append(steps, fmt.Sprintf("%d objects: %s", objects, strings.Join(parts, ", ")))
	}
	return fmt.Sprintf("%s: %s (%.1fs)", verdict, strings.Join(steps, "; "), r.Seconds)
}

// WriteText prints the per-object table (KIND, NAMESPACE, NAME, RESULT,
// MESSAGE; with APP first when several sources were verified), the notes
// and the summary.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	many := len(r.sources()) > 1
	if many {
		fmt.Fprint(tw, "APP\t")
	}
	fmt.Fprintln(tw, "KIND\tNAMESPACE\tNAME\tRESULT\tMESSAGE")
	for _, c := range r.Cases {
		if many {
			fmt.Fprint(tw, c.Source+"\t")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", dash(c.Kind), dash(c.Namespace), c.Name, c.Result, c.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	_, err := fmt.Fprintln(w, r.Summary())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteJSON prints the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// junitSuites is the JUnit XML format CI systems read (the Jenkins/Ant
// schema GitLab, GitHub actions and Jenkins share).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the report as JUnit XML to path: one test suite per
// source, one test case per object (or failed step), a failure element with
// the reason for each failed case, a skipped element for each skipped one.
func (r *Report) WriteJUnit(path string) error {
	doc := junitSuites{Name: "fjord verify", Time: fmt.Sprintf("%.3f", r.Seconds)}
	for _, src := range r.sources() {
		suite := junitSuite{Name: src}
		for _, c := range r.Cases {
			if c.Source != src {
				continue
			}
			jc := junitCase{Classname: "fjord-verify." + src, Name: c.ref()}
			switch c.Result {
			case Failed:
				jc.Failure = &junitMessage{Message: c.Message, Type: "Failed", Text: c.Message}
				suite.Failures++
			case Skipped:
				jc.Skipped = &junitMessage{Message: c.Message}
				suite.Skipped++
			default:
				jc.SystemOut = string(c.Result) + ": " + c.Message
			}
			suite.Tests++
			suite.Cases = append(suite.Cases, jc)
		}
		doc.Tests += suite.Tests
		doc.Failures += suite.Failures
		doc.Skipped += suite.Skipped
		doc.Suites = append(doc.Suites, suite)
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.WriteFile(path, append([]byte(xml.Header), append(out, '\n')...), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
