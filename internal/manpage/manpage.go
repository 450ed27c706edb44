// Package manpage writes manual pages in roff (man(7)) from what the
// programs themselves define: their flag sets, option tables and the
// configuration schema, so that a page lists exactly what the program
// takes. xvsd -manpage and xvsadm manpage call it; make package installs
// what they write.
package manpage

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Page is one manual page.
type Page struct {
	Name    string // "xvsd"
	Section string // "8"
	Summary string // the NAME line after the dash
	// Synopsis lines, each a command line.
	Synopsis []string
	Sections []Section
}

// Section is a section of a page: paragraphs, then tagged items.
type Section struct {
	Heading string
	Text    []string
	Items   []Item
}

// Item is a tagged paragraph: an option, a key, a command.
type Item struct {
	Tag  string
	Text string
}

// Source names what the pages belong to, in their footer.
const Source = "xvs"

// Write writes p as roff.
func (p *Page) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s %s \"\" %q %q\n", strings.ToUpper(p.Name), p.Section, Source, manual(p.Section))
	b.WriteString(".SH NAME\n")
	fmt.Fprintf(&b, "%s \\- %s\n", escape(p.Name), escape(p.Summary))
	if len(p.Synopsis) > 0 {
		b.WriteString(".SH SYNOPSIS\n")
		for i, s := range p.Synopsis {
			if i > 0 {
				b.WriteString(".br\n")
			}
			fmt.Fprintf(&b, ".B %s\n", escape(s))
		}
	}
	for _, s := range p.Sections {
		fmt.Fprintf(&b, ".SH %s\n", escape(strings.ToUpper(s.Heading)))
		for i, t := range s.Text {
			if i > 0 {
				b.WriteString(".PP\n")
			}
			b.WriteString(escape(t) + "\n")
		}
		for _, it := range s.Items {
			fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", escape(it.Tag), escape(it.Text))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func manual(section string) string {
	switch section {
	case "5":
		return "File Formats"
	case "8":
		return "System Administration"
	}
	return "User Commands"
}

// escape makes text safe in roff: backslashes and hyphens escaped, and a
// line that would start with a control character ('.' or ') guarded.
func escape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// Flags lists a flag set's flags as items, in its order (sorted by name),
// each with its argument and default.
func Flags(fs *flag.FlagSet, dash string) []Item {
	var out []Item
	fs.VisitAll(func(f *flag.Flag) {
		tag := dash + f.Name
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			tag += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		out = append(out, Item{Tag: tag, Text: usage})
	})
	return out
}
