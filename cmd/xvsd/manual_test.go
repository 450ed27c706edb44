package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/xvs-lb/xvs/control/config"
)

// TestManpages: xvsd.8 documents every flag of xvsd, and xvs.toml.5 every
// key of every table of the schema the decoder reads with; a flag or key
// without a description fails.
func TestManpages(t *testing.T) {
	fs := flag.NewFlagSet("xvsd", flag.ContinueOnError)
	defineFlags(fs)
	var page bytes.Buffer
	if err := writeManpage(&page, "xvsd.8", fs); err != nil {
		t.Fatal(err)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if strings.TrimSpace(f.Usage) == "" {
			t.Errorf("flag -%s has no description", f.Name)
		}
		if !strings.Contains(page.String(), ".B \\-"+strings.ReplaceAll(f.Name, "-", "\\-")) {
			t.Errorf("xvsd.8 does not document -%s", f.Name)
		}
	})
	page.Reset()
	if err := writeManpage(&page, "xvs.toml.5", fs); err != nil {
		t.Fatal(err)
	}
	for _, tab := range config.Schema() {
		if !strings.Contains(page.String(), ".SH "+strings.ToUpper(strings.ReplaceAll(tableName(tab), "-", "\\-"))) {
			t.Errorf("xvs.toml.5 has no section for %q", tab.Path)
		}
		for _, k := range tab.Keys {
			if strings.TrimSpace(k.Doc) == "" || !strings.Contains(page.String(), ".B "+strings.ReplaceAll(k.Key, "-", "\\-")+" (") {
				t.Errorf("xvs.toml.5 does not document %s.%s", tab.Path, k.Key)
			}
		}
	}
	if err := writeManpage(&page, "bogus.1", fs); err == nil {
		t.Error("an unknown page was written")
	}
}

// TestLoggerConfig: console lines with timestamps by default, without under
// systemd's journal (which stamps them), JSON on request.
func TestLoggerConfig(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tt := range []struct {
		format   string
		env      func(string) string
		encoding string
		time     bool
	}{
		{"auto", env(), "console", true},
		{"auto", env("JOURNAL_STREAM", "8:1234"), "console", false},
		{"auto", env("INVOCATION_ID", "abc"), "console", false},
		{"console", env("JOURNAL_STREAM", "8:1234"), "console", true},
		{"json", env("JOURNAL_STREAM", "8:1234"), "json", true},
	} {
		cfg, err := loggerConfig("info", tt.format, tt.env)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Encoding != tt.encoding || (cfg.EncoderConfig.TimeKey != "") != tt.time {
			t.Errorf("%s: encoding %s, time key %q; want %s, time %v", tt.format, cfg.Encoding, cfg.EncoderConfig.TimeKey, tt.encoding, tt.time)
		}
	}
	if _, err := loggerConfig("info", "xml", env()); err == nil {
		t.Error("-log-format xml was accepted")
	}
}
