package report

import (
	_ "embed"
	"encoding/json"
	htmltpl "html/template"
	"io"
	"strings"
	texttpl "text/template"
	"time"
)

//go:embed report.md.tmpl
var mdSource string

//go:embed report.html.tmpl
var htmlSource string

var funcs = map[string]any{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"upper": strings.ToUpper,
	"md": func(s string) string { // keep table cells one line and pipe-free
		return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
	},
}

var (
	mdTpl   = texttpl.Must(texttpl.New("md").Funcs(funcs).Parse(mdSource))
	htmlTpl = htmltpl.Must(htmltpl.New("html").Funcs(funcs).Parse(htmlSource))
)

// Markdown writes the report as Markdown.
func (r *Report) Markdown(w io.Writer) error { return mdTpl.Execute(w, r) }

// HTML writes the report as one self-contained HTML file (inline style, no
// external resources).
func (r *Report) HTML(w io.Writer) error { return htmlTpl.Execute(w, r) }

// JSON writes the report as indented JSON.
func (r *Report) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
