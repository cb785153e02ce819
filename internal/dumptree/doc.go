// Package dumptree writes a tree of object files whose names come from
// etcd keys, which the file's writer chose and may have made hostile.
//
// Invariants: every file and directory is created under one root it
// cannot leave: segments are checked ([CheckSegment]: no "", ".", "..",
// separator or NUL), every path goes through [os.Root], no symlink is
// followed, not even one inside the root, and no existing file is
// replaced. Files are 0600, directories 0700. A tree is written in a
// temporary directory next to its destination and appears there, whole,
// only when [Tree.Commit] returns nil.
//
// Non-guarantees: the files are not fsynced one by one (the directories
// are, at Commit); a tree is written by one goroutine.
package dumptree
