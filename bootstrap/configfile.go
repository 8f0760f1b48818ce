package bootstrap

import (
	"fmt"
	"sort"

	"gopkg.in/yaml.v3"
)

// ConfigFile renders a server configuration file (/etc/fjord/config.yaml):
// comment as its head, `version`, then one flat key per entry of values,
// sorted, keys being the flag names as `fjord server` reads them. A value
// is written as a plain YAML scalar when reading it back gives the same
// text (6443, true, 10ms), and quoted otherwise, so the loader, which reads
// every value as text, sees exactly what was given.
func ConfigFile(version, comment string, values map[string]string) ([]byte, error) {
	doc := &yaml.Node{Kind: yaml.MappingNode, HeadComment: comment}
	add := func(k, v string) {
		doc.Content = append(doc.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: k},
			scalar(v))
	}
	if version != "" {
		add("version", version)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		if k == "version" {
			return nil, fmt.Errorf("config key %q is set by the file's format", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(k, values[k])
	}
	return yaml.Marshal(doc)
}

// scalar returns v as a plain scalar when YAML reads it back as the same
// text, else as a double-quoted string.
func scalar(v string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Value: v}
	var back any
	if err := yaml.Unmarshal([]byte(v), &back); err == nil && back != nil && fmt.Sprint(back) == v {
		if _, isMap := back.(map[string]any); !isMap {
			if _, isList := back.([]any); !isList {
				return n
			}
		}
	}
	n.Style = yaml.DoubleQuotedStyle
	n.Tag = "!!str"
	return n
}
