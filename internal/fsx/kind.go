package fsx

import "io/fs"

// KindName names the type of a file mode for messages: "file",
// "directory", "symlink", "named pipe (fifo)", "socket", "character
// device", "block device", or "special file". It is the one wording the
// read commands, backup's kube dir walk and restore use.
func KindName(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "file"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (fifo)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	}
	return "special file"
}
