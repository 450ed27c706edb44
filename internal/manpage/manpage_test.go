package manpage

import (
	"flag"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("config", "/etc/x.toml", "the `file` to read")
	fs.Bool("check", false, "check and exit")
	p := Page{Name: "x", Section: "8", Summary: "does x-things", Synopsis: []string{"x [-check]"},
		Sections: []Section{{Heading: "Options", Items: Flags(fs, "-")}, {Heading: "Notes"}}}
	p.Sections[1].Text = []string{".starts with a dot", `a \ backslash`}
	var b strings.Builder
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		".TH X 8 \"\" \"xvs\" \"System Administration\"\n",
		"x \\- does x\\-things\n",
		".B x [\\-check]\n",
		".TP\n.B \\-check\ncheck and exit\n",
		".TP\n.B \\-config file\nthe file to read (default /etc/x.toml)\n",
		"\\&.starts with a dot\n",
		"a \\e backslash\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, b.String())
		}
	}
}
