package config

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestIndexLines(t *testing.T) {
	src := doc(
		`# [[service]] in a comment`,  // 1
		`top = "a # not a comment"`,   // 2
		`"quoted.key" = 1`,            // 3
		`[a . "b"]`,                   // 4
		`x = [`,                       // 5
		`  1,`,                        // 6
		`  [2, 3], # ]`,               // 7
		`]`,                           // 8
		`y = """`,                     // 9
		`[[service]]`,                 // 10
		`z = 1 """`,                   // 11
		`w = '''x''''`,                // 12
		`d = 1979-05-27 07:32:00Z`,    // 13
		`[[service]]`,                 // 14
		`[[service]]`,                 // 15
		`inline = { k = 'v', n.m = {`, // 16
		`  o = 2 } }`,                 // 17
		`[[service.real]]`,            // 18
		`[service.real.extra]`,        // 19
		`e = "\"" # "`,                // 20
		`[[service.real]]`,            // 21
		`[[other]]`,                   // 22
		`list = [{ a = 1 },`,          // 23
		`  { a = 2 }]`,                // 24
	)
	want := lineIndex{
		"top":                        2,
		"quoted.key":                 3,
		"a.b":                        4,
		"a.b.x":                      5,
		"a.b.x[0]":                   6,
		"a.b.x[1]":                   7,
		"a.b.x[1][0]":                7,
		"a.b.x[1][1]":                7,
		"a.b.y":                      9,
		"a.b.w":                      12,
		"a.b.d":                      13,
		"service":                    14,
		"service[0]":                 14,
		"service[1]":                 15,
		"service[1].inline":          16,
		"service[1].inline.k":        16,
		"service[1].inline.n.m":      16,
		"service[1].inline.n.m.o":    17,
		"service[1].real":            18,
		"service[1].real[0]":         18,
		"service[1].real[0].extra":   19,
		"service[1].real[0].extra.e": 20,
		"service[1].real[1]":         21,
		"other":                      22,
		"other[0]":                   22,
		"other[0].list":              23,
		"other[0].list[0]":           23,
		"other[0].list[0].a":         23,
		"other[0].list[1]":           24,
		"other[0].list[1].a":         24,
	}
	got := indexLines(src)
	if !maps.Equal(got, want) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: line %d, want %d", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s: line %d", k, v)
			}
		}
	}
	for path, line := range map[string]int{
		"service[1].real[1].port": 21, // a missing key: its table
		"service[1].real[7]":      18, // no such element: the array
		"nothing.at.all":          0,
		"":                        0,
	} {
		if got := got.lineOf(path); got != line {
			t.Errorf("lineOf(%q) = %d, want %d", path, got, line)
		}
	}
}

// TestIndexLinesStops checks that the scanner gives up quietly on input
// it does not understand, keeping what it found before.
func TestIndexLinesStops(t *testing.T) {
	for _, src := range []string{
		"a = 1\n[b\n",
		"a = 1\nb = \"open\n",
		"a = 1\n= 2\n",
		"a = 1\nb = [1 2]\n",
		"a = 1\nb = '''open\n",
		"a = 1\nb = { c = 1 d = 2 }\n",
		"a = 1\nb = " + string(make([]byte, 100)) + "\n",
	} {
		li := indexLines([]byte(src))
		if li["a"] != 1 {
			t.Errorf("%q: a at line %d, want 1", src, li["a"])
		}
	}
	deep := []byte("a = 1\nb = ")
	for range 2 * maxDepth {
		deep = append(deep, '[')
	}
	if li := indexLines(deep); li["a"] != 1 {
		t.Errorf("deep nesting: a at line %d, want 1", li["a"])
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../configs/*.toml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(doc(`a = [{b = """x`, `"""}]`, `[[c.d]]`, `e.f = 'g'`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.toml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one", cfg, err)
		}
		if err == nil {
			// A valid config must stay valid: nothing Parse accepts
			// depends on the order of map iteration.
			if _, err := Parse("fuzz.toml", data); err != nil {
				t.Fatalf("second Parse failed: %v", err)
			}
		}
	})
}
