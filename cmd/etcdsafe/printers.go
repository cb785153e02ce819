package main

// kubectl's -o formats for get and ls: name, wide, jsonpath, go-template
// and custom-columns, next to the yaml and json of output.go.
//
// The printers of k8s.io/cli-runtime/pkg/printers do the work for name,
// jsonpath and go-template (kubectl's own code, so the templates mean what
// they mean to kubectl, with its template functions). custom-columns is
// kubectl's CustomColumnsPrinter rebuilt here on client-go's jsonpath:
// that printer lives in k8s.io/kubectl/pkg/cmd/get, whose package pulls in
// all of kubectl's command tree.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/util/jsonpath"

	"github.com/etcdsafe/etcdsafe/inspect"
	"github.com/etcdsafe/etcdsafe/source"
)

// templateFormats take an argument (FORMAT=TEXT) or a file (FORMAT-file=PATH).
var templateFormats = []string{"jsonpath", "go-template", "custom-columns"}

// maxTemplateFile bounds a -o ...-file=PATH: templates are a few lines.
const maxTemplateFile = 1 << 20

// outputSpec is a parsed -o value. Templates are parsed with the command
// line, so a bad one is a usage error before anything is read.
type outputSpec struct {
	format  string // yaml, json, name, wide, jsonpath, go-template, custom-columns, or the command's own (table, keys)
	raw     string // the value as given
	path    *printers.JSONPathPrinter
	tmpl    *printers.GoTemplatePrinter
	columns []column
}

// column is one column of custom-columns (or of -o wide).
type column struct {
	header string
	path   *jsonpath.JSONPath
	labels bool // a map printed as k=v,k=v (wide's SELECTOR), not as Go prints it
	// count: a number kubectl prints 0 for when the field is absent (an
	// omitempty int of a status); with over set, the cell is
	// "path/over" (READY 3/5)
	count bool
	over  *jsonpath.JSONPath
}

// outputValue is -o as a flag: one of the command's formats, checked
// and parsed when the command line is.
type outputValue struct {
	spec    *outputSpec
	allowed []string
}

// addObjectOutputFlag adds -o/--output with formats, the first the
// default; formats may name jsonpath, go-template and custom-columns,
// which then take TEXT or a file (jsonpath=TEXT, jsonpath-file=PATH).
func addObjectOutputFlag(fs *pflag.FlagSet, spec *outputSpec, formats ...string) {
	spec.format, spec.raw = formats[0], formats[0]
	words := make([]string, 0, len(formats))
	for _, f := range formats {
		if slices.Contains(templateFormats, f) {
			f += "=..."
		}
		words = append(words, f)
	}
	fs.VarP(&outputValue{spec: spec, allowed: formats}, "output", "o", orList(words)+" (as kubectl's -o)")
}

func (v *outputValue) String() string { return v.spec.raw }
func (v *outputValue) Type() string   { return "format" }

func (v *outputValue) Set(s string) error {
	spec, err := parseOutput(s, v.allowed)
	if err != nil {
		return err
	}
	*v.spec = spec
	return nil
}

// parseOutput parses one -o value among the allowed formats. Its errors
// carry the template parser's own message.
func parseOutput(s string, allowed []string) (outputSpec, error) {
	words := make([]string, 0, len(allowed))
	for _, f := range allowed {
		if slices.Contains(templateFormats, f) {
			f += "=..."
		}
		words = append(words, f)
	}
	format, arg, hasArg := strings.Cut(s, "=")
	base, file := strings.CutSuffix(format, "-file")
	if !slices.Contains(templateFormats, base) {
		if hasArg || !slices.Contains(allowed, s) {
			return outputSpec{}, fmt.Errorf("-o must be %s", orList(words))
		}
		return outputSpec{format: s, raw: s}, nil
	}
	if !slices.Contains(allowed, base) {
		return outputSpec{}, fmt.Errorf("-o must be %s", orList(words))
	}
	if arg == "" {
		if file {
			return outputSpec{}, fmt.Errorf("-o %s needs a file: %s=PATH", format, format)
		}
		return outputSpec{}, fmt.Errorf("-o %s needs a template: %s=TEMPLATE", format, format)
	}
	text := arg
	if file {
		b, err := readTemplateFile(arg)
		if err != nil {
			return outputSpec{}, err
		}
		text = string(b)
	}
	spec := outputSpec{format: base, raw: s}
	var err error
	switch base {
	case "jsonpath":
		if spec.path, err = printers.NewJSONPathPrinter(text); err != nil {
			return outputSpec{}, fmt.Errorf("jsonpath template %q: %w", text, err)
		}
		spec.path.AllowMissingKeys(true) // as kubectl: a missing field prints nothing
	case "go-template":
		if spec.tmpl, err = printers.NewGoTemplatePrinter([]byte(text)); err != nil {
			return outputSpec{}, fmt.Errorf("go-template: %w", err)
		}
		spec.tmpl.AllowMissingKeys(true)
	case "custom-columns":
		if file {
			spec.columns, err = columnsFromFile(text)
		} else {
			spec.columns, err = columnsFromSpec(text)
		}
		if err != nil {
			return outputSpec{}, err
		}
	}
	return spec, nil
}

func readTemplateFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("template file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTemplateFile+1))
	if err != nil {
		return nil, fmt.Errorf("template file %q: %w", path, err)
	}
	if len(b) > maxTemplateFile {
		return nil, fmt.Errorf("template file %q: larger than %d bytes", path, maxTemplateFile)
	}
	return b, nil
}

// relaxedPath is kubectl's RelaxedJSONPathExpression: metadata.name,
// .metadata.name, {metadata.name} and {.metadata.name} all mean
// {.metadata.name}.
var relaxedPath = regexp.MustCompile(`^\{\.?([^{}]+)\}$|^\.?([^{}]+)$`)

func newColumn(header, expr string) (column, error) {
	if expr == "" {
		return column{}, fmt.Errorf("custom-columns: column %q has no path", header)
	}
	m := relaxedPath.FindStringSubmatch(expr)
	if m == nil {
		return column{}, fmt.Errorf("custom-columns: column %q: unexpected path %q, expected a path such as {.metadata.name}", header, expr)
	}
	p := jsonpath.New(header).AllowMissingKeys(true)
	if err := p.Parse("{." + m[1] + m[2] + "}"); err != nil {
		return column{}, fmt.Errorf("custom-columns: column %q: %w", header, err)
	}
	return column{header: header, path: p}, nil
}

// columnsFromSpec parses "NAME:.metadata.name,NODE:.spec.nodeName".
func columnsFromSpec(spec string) ([]column, error) {
	var cols []column
	for _, part := range strings.Split(spec, ",") {
		header, expr, ok := strings.Cut(part, ":")
		if !ok || header == "" {
			return nil, fmt.Errorf("custom-columns: %q is not HEADER:PATH", part)
		}
		c, err := newColumn(header, expr)
		if err != nil {
			return nil, err
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// columnsFromFile parses kubectl's custom-columns file: a line of headers,
// then a line of paths.
func columnsFromFile(text string) ([]column, error) {
	var lines [][]string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			lines = append(lines, f)
		}
	}
	if len(lines) != 2 || len(lines[0]) != len(lines[1]) {
		return nil, errors.New("custom-columns file: want two lines, the headers and as many paths")
	}
	cols := make([]column, len(lines[0]))
	for i := range cols {
		c, err := newColumn(lines[0][i], lines[1][i])
		if err != nil {
			return nil, err
		}
		cols[i] = c
	}
	return cols, nil
}

// cell evaluates one column on obj as kubectl does: several values joined
// by commas, <none> for none.
func (c column) cell(obj map[string]any) string {
	if c.count {
		n := column{path: c.path}.cell(obj)
		if n == "<none>" {
			n = "0"
		}
		if c.over == nil {
			return n
		}
		d := column{path: c.over}.cell(obj)
		if d == "<none>" {
			d = "0"
		}
		return n + "/" + d
	}
	results, err := c.path.FindResults(obj)
	if err != nil {
		return "<none>"
	}
	var vals []string
	for _, r := range results {
		for _, v := range r {
			if !v.IsValid() || !v.CanInterface() || v.Interface() == nil {
				continue
			}
			if m, ok := v.Interface().(map[string]any); ok && c.labels {
				vals = append(vals, labelText(m))
				continue
			}
			vals = append(vals, fmt.Sprint(v.Interface()))
		}
	}
	if len(vals) == 0 {
		return "<none>"
	}
	return strings.Join(vals, ",")
}

// objectOutput prints get's (and ls's) objects in one -o format. encode
// runs on the render workers and may be called concurrently; write, in
// key order, prints what encode made; close ends the output.
type objectOutput interface {
	encode(obj *unstructured.Unstructured) ([]byte, error)
	write(e inspect.Entry, obj *unstructured.Unstructured, b []byte, encErr error) error
	printKey(e inspect.Entry, s *source.Source) error
	close() error
}

// newObjectOutput returns the printer of spec's format. single: one
// object was asked for by name (json and jsonpath print it alone, not
// in a List, when it is the only one).
func newObjectOutput(w io.Writer, spec outputSpec, single bool) objectOutput {
	switch spec.format {
	case "yaml", "json":
		return docOutput{newPrinter(w, spec.format, single)}
	}
	o := &kubeOutput{w: w, spec: spec, single: single}
	if spec.format == "wide" || spec.format == "custom-columns" {
		o.tw = tabwriter.NewWriter(w, 0, 8, 3, ' ', 0) // kubectl's padding
	}
	return o
}

// docOutput is output.go's YAML stream or JSON printer.
type docOutput struct{ *printer }

func (d docOutput) write(_ inspect.Entry, obj *unstructured.Unstructured, b []byte, encErr error) error {
	return d.printer.write(obj, b, encErr)
}

// kubeOutput prints name, wide, custom-columns (a line per object, made by
// encode), jsonpath and go-template (run once over the object, or over a
// List of all objects at close, as kubectl: those keep every object).
type kubeOutput struct {
	w      io.Writer
	spec   outputSpec
	single bool
	tw     *tabwriter.Writer
	header string // the table's current header line
	n      int
	items  []any
}

func (o *kubeOutput) encode(obj *unstructured.Unstructured) ([]byte, error) {
	switch o.spec.format {
	case "name":
		if obj.GetKind() == "" {
			return nil, nil // a key, see write
		}
		var b bytes.Buffer
		err := (&printers.NamePrinter{}).PrintObj(obj, &b)
		return b.Bytes(), err
	case "custom-columns":
		return rowLine(o.spec.columns, obj.Object, ""), nil
	case "wide":
		if obj.GetKind() == "" {
			return nil, nil // a key, see writeWide
		}
		return wideLine(obj), nil
	}
	return nil, nil
}

func (o *kubeOutput) write(e inspect.Entry, obj *unstructured.Unstructured, b []byte, encErr error) error {
	if encErr != nil {
		return encErr
	}
	defer func() { o.n++ }()
	switch o.spec.format {
	case "name":
		if b == nil { // not an object: its key, as ls -o keys
			b = []byte(e.Key + "\n")
		}
		_, err := o.w.Write(b)
		return err
	case "custom-columns":
		if o.n == 0 {
			if _, err := io.WriteString(o.tw, headerLine(o.spec.columns, nil)); err != nil {
				return err
			}
		}
		_, err := o.tw.Write(b)
		return err
	case "wide":
		return o.writeWide(e, b)
	}
	o.items = append(o.items, obj.Object)
	return nil
}

func (o *kubeOutput) printKey(e inspect.Entry, s *source.Source) error {
	rec, err := s.Snapshot.Get(e.Rev)
	if err != nil {
		return err
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"key": e.Key, "modRevision": e.ModRevision, "createRevision": e.CreateRevision, "version": e.Version,
		"value": string(rec.Value),
	}}
	b, err := o.encode(obj)
	return o.write(e, obj, b, err)
}

func (o *kubeOutput) close() error {
	switch o.spec.format {
	case "wide", "custom-columns":
		return o.tw.Flush()
	case "jsonpath", "go-template":
	default:
		return nil
	}
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "List", "items": o.items}}
	if o.items == nil {
		obj.Object["items"] = []any{}
	}
	if o.single && len(o.items) == 1 {
		obj.Object = o.items[0].(map[string]any)
	}
	// Into a buffer: on an error, nothing of it is printed (kubectl's
	// go-template printer writes the object, secrets and all, to the
	// output as a debugging aid; its jsonpath error quotes the object).
	var b bytes.Buffer
	var err error
	if o.spec.path != nil {
		err = o.spec.path.Execute(&b, obj.Object) // jsonpath's own Execute: PrintObj's error quotes the object
	} else {
		err = o.spec.tmpl.PrintObj(obj, &b)
	}
	if err != nil {
		return usagef("-o %s: %v", o.spec.format, err)
	}
	_, err = o.w.Write(b.Bytes())
	return err
}

// rowLine is one tab-separated line of cells; extra, when not "", is a
// last cell.
func rowLine(cols []column, obj map[string]any, extra string) []byte {
	var b bytes.Buffer
	for i, c := range cols {
		if i > 0 {
			b.WriteByte('\t')
		}
		b.WriteString(tabSafe(c.cell(obj)))
	}
	if extra != "" {
		b.WriteString("\t" + extra)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

func headerLine(cols []column, extra []string) string {
	h := make([]string, 0, len(cols)+len(extra))
	for _, c := range cols {
		h = append(h, c.header)
	}
	return strings.Join(append(h, extra...), "\t") + "\n"
}

// tabSafe keeps a value on its line and in its cell.
func tabSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// wideColumns are get -o wide's columns by kind: NAMESPACE and NAME, what
// kubectl's wide output shows of that kind where the stored object has it
// (no ages, no counts of other objects; READY as kubectl's "ready/desired",
// a count absent from the status as 0), then REVISION, the etcd revision
// of the object's value. Kinds not listed show their KIND and APIVERSION.
var wideColumns = map[string][]column{
	"Pod":         mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,STATUS:.status.phase,IP:.status.podIP,NODE:.spec.nodeName,IMAGES:.spec.containers[*].image"),
	"Deployment":  mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,READY:#.status.readyReplicas/.spec.replicas,UP-TO-DATE:#.status.updatedReplicas,AVAILABLE:#.status.availableReplicas,CONTAINERS:.spec.template.spec.containers[*].name,IMAGES:.spec.template.spec.containers[*].image,SELECTOR:.spec.selector.matchLabels"),
	"StatefulSet": mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,READY:#.status.readyReplicas/.spec.replicas,CONTAINERS:.spec.template.spec.containers[*].name,IMAGES:.spec.template.spec.containers[*].image"),
	"DaemonSet":   mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,DESIRED:#.status.desiredNumberScheduled,CURRENT:#.status.currentNumberScheduled,READY:#.status.numberReady,UP-TO-DATE:#.status.updatedNumberScheduled,AVAILABLE:#.status.numberAvailable,CONTAINERS:.spec.template.spec.containers[*].name,IMAGES:.spec.template.spec.containers[*].image,SELECTOR:.spec.selector.matchLabels"),
	"ReplicaSet":  mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,DESIRED:#.spec.replicas,CURRENT:#.status.replicas,READY:#.status.readyReplicas,CONTAINERS:.spec.template.spec.containers[*].name,IMAGES:.spec.template.spec.containers[*].image"),
	"Job":         mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,COMPLETIONS:#.status.succeeded/.spec.completions,CONTAINERS:.spec.template.spec.containers[*].name,IMAGES:.spec.template.spec.containers[*].image"),
	"CronJob":     mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,SCHEDULE:.spec.schedule,SUSPEND:.spec.suspend,CONTAINERS:.spec.jobTemplate.spec.template.spec.containers[*].name,IMAGES:.spec.jobTemplate.spec.template.spec.containers[*].image"),
	"Service":     mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,TYPE:.spec.type,CLUSTER-IP:.spec.clusterIP,PORTS:.spec.ports[*].port,SELECTOR:.spec.selector"),
	"Node":        mustColumns("NAME:.metadata.name,INTERNAL-IP:.status.addresses[?(@.type==\"InternalIP\")].address,VERSION:.status.nodeInfo.kubeletVersion,OS-IMAGE:.status.nodeInfo.osImage,CONTAINER-RUNTIME:.status.nodeInfo.containerRuntimeVersion"),
	"Secret":      mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,TYPE:.type"),
	"":            mustColumns("NAMESPACE:.metadata.namespace,NAME:.metadata.name,KIND:.kind,APIVERSION:.apiVersion"),
}

// mustColumns parses a wide spec: custom-columns' HEADER:PATH, where a
// PATH "#.a" is a count (0 when absent) and "#.a/.b" a ratio of counts.
func mustColumns(spec string) []column {
	var cols []column
	for _, part := range strings.Split(spec, ",") {
		header, expr, _ := strings.Cut(part, ":")
		expr, count := strings.CutPrefix(expr, "#")
		num, den, ratio := strings.Cut(expr, "/")
		c, err := newColumn(header, num)
		if err != nil {
			panic(err)
		}
		c.labels, c.count = header == "SELECTOR", count
		if ratio {
			d, err := newColumn(header, den)
			if err != nil {
				panic(err)
			}
			c.over = d.path
		}
		cols = append(cols, c)
	}
	return cols
}

// labelText is a label map as kubectl's wide SELECTOR shows it: app=api,tier=web.
func labelText(m map[string]any) string {
	kv := make([]string, 0, len(m))
	for k, v := range m {
		kv = append(kv, fmt.Sprintf("%s=%v", k, v))
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

func wideFor(kind string) []column {
	if c, ok := wideColumns[kind]; ok {
		return c
	}
	return wideColumns[""]
}

// wideLine is the object's row without its last cell (REVISION: write
// adds it) and with its header first, tab-separated: the header tells
// write where a new table starts.
func wideLine(obj *unstructured.Unstructured) []byte {
	cols := wideFor(obj.GetKind())
	return append([]byte(headerLine(cols, []string{"REVISION"})), rowLine(cols, obj.Object, "")...)
}

// writeWide prints a row of -o wide; a kind with other columns than the
// row before starts a new table after a blank line, as kubectl does for
// each type.
func (o *kubeOutput) writeWide(e inspect.Entry, b []byte) error {
	if b == nil { // a key that holds no object
		b = append([]byte(headerLine(wideColumns[""], []string{"REVISION"})), rowLine(wideColumns[""], map[string]any{"metadata": map[string]any{"name": e.Key}}, "")...)
	}
	header, row, _ := bytes.Cut(b, []byte("\n"))
	if string(header) != o.header {
		if err := o.tw.Flush(); err != nil {
			return err
		}
		if o.header != "" {
			if _, err := io.WriteString(o.w, "\n"); err != nil {
				return err
			}
		}
		o.header = string(header)
		if _, err := fmt.Fprintf(o.tw, "%s\n", header); err != nil {
			return err
		}
	}
	row = bytes.TrimSuffix(row, []byte("\n"))
	_, err := fmt.Fprintf(o.tw, "%s\t%d\n", row, e.ModRevision)
	return err
}

// historyRevision is one revision of history -o json|yaml (docs/JSON.md).
type historyRevision struct {
	Revision       int64          `json:"revision"`
	Event          string         `json:"event"` // created, updated, deleted
	Version        int64          `json:"version,omitempty"`
	CreateRevision int64          `json:"createRevision,omitempty"`
	Object         map[string]any `json:"object,omitempty"` // as the API served it (history's --raw)
	Value          *string        `json:"value,omitempty"`  // a value that holds no object, as text
	Error          string         `json:"error,omitempty"`  // why the value could not be shown
}

// writeHistoryDoc prints history's revisions as one JSON or YAML document:
// {key, revisions}. A revision that cannot be rendered has its error,
// and counts among fails.
func writeHistoryDoc(out io.Writer, format, key string, s *source.Source, recs []inspect.Record, ro *renderOptions, stderr io.Writer, fails *failures) error {
	revs := make([]historyRevision, 0, len(recs))
	for _, rec := range recs {
		r := historyRevision{Revision: rec.Rev.Main, Event: "updated"}
		switch {
		case rec.Rev.Tombstone:
			r.Event = "deleted"
			revs = append(revs, r)
			continue
		case rec.Version == 1:
			r.Event = "created"
		}
		r.Version, r.CreateRevision = rec.Version, rec.CreateRevision
		obj, notes, err := s.RenderRecord(rec, ro.options(nil))
		printNotes(stderr, string(rec.Key), notes)
		switch {
		case errors.Is(err, source.ErrNotObject):
			v := string(rec.Value)
			r.Value = &v
		case err != nil:
			fails.add(fmt.Sprintf("%s@%d", key, rec.Rev.Main), err)
			r.Error = cleanMessage(err)
		default:
			r.Object = obj.Object
		}
		revs = append(revs, r)
	}
	doc := struct {
		Key       string            `json:"key"`
		Revisions []historyRevision `json:"revisions"`
	}{key, revs}
	if format == "json" {
		return printJSON(out, doc)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if b, err = marshalYAML(m); err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}
