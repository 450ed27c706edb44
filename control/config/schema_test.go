package config

import (
	"strings"
	"testing"
)

// TestSchemaDocumented: every key of every table has a type and a
// description, no table lists a key twice, and a table that takes another's
// keys names one that exists. The decoder's known keys are Schema's
// (keysOf), so an undocumented key cannot be read.
func TestSchemaDocumented(t *testing.T) {
	paths := map[string]bool{}
	for _, tab := range Schema() {
		if paths[tab.Path] {
			t.Errorf("table %q listed twice", tab.Path)
		}
		paths[tab.Path] = true
		if strings.TrimSpace(tab.Doc) == "" {
			t.Errorf("table %q has no description", tab.Path)
		}
		seen := map[string]bool{}
		for _, k := range tab.Keys {
			if k.Key == "" || k.Type == "" || strings.TrimSpace(k.Doc) == "" {
				t.Errorf("%s.%s: key, type or description missing: %+v", tab.Path, k.Key, k)
			}
			if seen[k.Key] {
				t.Errorf("%s.%s listed twice", tab.Path, k.Key)
			}
			seen[k.Key] = true
		}
		if (tab.SameAs == "") == (len(tab.Keys) == 0) {
			t.Errorf("table %q: want keys or SameAs, one of them", tab.Path)
		}
	}
	for _, tab := range Schema() {
		if tab.SameAs != "" && !paths[tab.SameAs] {
			t.Errorf("table %q takes the keys of %q, which is not in the schema", tab.Path, tab.SameAs)
		}
		// Every table a key opens is documented too.
		for _, k := range tab.Keys {
			if strings.Contains(k.Type, "table") && !paths[joinKey(tab.Path, k.Key)] {
				t.Errorf("%s.%s opens a table that the schema does not document", tab.Path, k.Key)
			}
		}
	}
}

// TestSchemaIsTheDecoders: a key the schema documents is known to the
// decoder (an unknown key is refused and the message lists the table's known
// keys, which are the schema's).
func TestSchemaIsTheDecoders(t *testing.T) {
	for _, tt := range []struct {
		path, table string
		lines       []string
	}{
		{"director", "[director]", []string{"[director]", `interfaces = ["eth0"]`, "bogus = 1"}},
		{"sync", "[sync]", []string{"[director]", `interfaces = ["eth0"]`, "[sync]", "bogus = 1"}},
		{"service.health", "[service.health]", []string{"[director]", `interfaces = ["eth0"]`, "[[service]]", "[service.health]", "bogus = 1"}},
	} {
		_, err := Parse("x.toml", doc(tt.lines...))
		want := "unknown key \"bogus\" in " + tt.table + " (known keys: " + strings.Join(keysOf(tt.path), ", ") + ")"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", tt.path, err, want)
		}
	}
}
