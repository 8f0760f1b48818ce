package build

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/yaml"
)

// document is one YAML document of a file.
type document struct {
	data []byte
	// line is the file line the document starts on, 1-based.
	line int
}

// splitDocuments splits a YAML stream on "---" lines, the way
// k8s.io/apimachinery's YAMLReader does, keeping each document's first line.
func splitDocuments(data []byte) []document {
	var docs []document
	start, line := 1, 1
	var cur bytes.Buffer
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		var l []byte
		if i < 0 {
			l, data = data, nil
		} else {
			l, data = data[:i+1], data[i+1:]
		}
		if bytes.HasPrefix(l, []byte("---")) && len(bytes.TrimSpace(l[3:])) == 0 {
			docs = append(docs, document{data: bytes.Clone(cur.Bytes()), line: start})
			cur.Reset()
			start = line + 1
		} else {
			cur.Write(l)
		}
		line++
	}
	return append(docs, document{data: cur.Bytes(), line: start})
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+):`)

// parseManifests decodes the objects of one file; name is the file relative
// to the repository root, for errors. A document of kind List contributes
// its items.
func parseManifests(name string, data []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	for _, doc := range splitDocuments(data) {
		j, err := yaml.YAMLToJSON(doc.data)
		if err != nil {
			reason := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
			line := doc.line
			// Make the parser's line, counted from the document's start, a
			// line of the file.
			if m := yamlLineRE.FindStringSubmatch(reason); m != nil {
				n, _ := strconv.Atoi(m[1])
				line = doc.line + n - 1
				reason = fmt.Sprintf("yaml: line %d:%s", line, strings.TrimPrefix(reason, m[0]))
			}
			return nil, &ManifestError{File: name, Line: line, Reason: reason}
		}
		j = bytes.TrimSpace(j)
		if bytes.Equal(j, []byte("null")) {
			continue // empty or comment-only document
		}
		var obj map[string]any
		if err := utiljson.Unmarshal(j, &obj); err != nil {
			return nil, &ManifestError{File: name, Line: doc.line, Reason: "document is not an object: " + describeJSON(j)}
		}
		u := &unstructured.Unstructured{Object: obj}
		if err := checkObject(u); err != nil {
			return nil, &ManifestError{File: name, Line: doc.line, Reason: err.Error()}
		}
		if u.GetKind() == "List" && u.GetAPIVersion() == "v1" {
			list, err := u.ToList()
			if err != nil {
				return nil, &ManifestError{File: name, Line: doc.line, Reason: "reading List: " + err.Error()}
			}
			for i := range list.Items {
				item := &list.Items[i]
				if err := checkObject(item); err != nil {
					return nil, &ManifestError{File: name, Line: doc.line, Reason: fmt.Sprintf("List item %d: %v", i, err)}
				}
				objs = append(objs, item)
			}
			continue
		}
		objs = append(objs, u)
	}
	return objs, nil
}

// checkObject refuses an object the API server could not place.
func checkObject(u *unstructured.Unstructured) error {
	var missing []string
	if u.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if u.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if len(missing) > 0 {
		what := "object"
		if name := u.GetName(); name != "" {
			what = fmt.Sprintf("object %q", name)
		}
		return fmt.Errorf("%s has no %s", what, strings.Join(missing, " or "))
	}
	return nil
}

// describeJSON names the JSON type of a non-object document.
func describeJSON(j []byte) string {
	switch j[0] {
	case '[':
		return "it is a list"
	case '"':
		return "it is a string"
	}
	return "it is a scalar"
}

// toYAML renders objects as a multi-document stream.
func toYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("rendering %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
