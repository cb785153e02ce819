// Package duhtml writes the page of `etcdsafe du --html`: one
// self-contained HTML file with a treemap of what fills an etcd db
// (resource → namespace → object, by bytes) and the report's tables.
//
// The page needs no network: its styles, its script and the treemap layout
// library are inline, and it loads nothing (no CDN, no font, no image).
// The layout is d3-hierarchy's squarified treemap (ISC license, kept in
// third_party/d3-hierarchy with the library, embedded whole): the reference
// implementation of Bruls, Huizing and van Wijk's algorithm, with no
// dependencies, 15 KB minified. It runs in the browser, so the rectangles
// follow the window's aspect; the Go side only decides the tree (which
// objects get a rectangle of their own) and renders the tables.
//
// Non-guarantees: the treemap shows at most the keys of
// [inspect.Usage.Largest] on their own and at most [MaxGroups] resource ×
// namespace groups, [MaxNamespaces] per resource; the rest of each group
// is one rectangle labelled with how many keys it stands for. Key names are in the page: treat it as the
// snapshot's metadata (the values never are).
package duhtml
