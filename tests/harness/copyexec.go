package harness

import (
	"io"
	"os"
)

// CopyExecutable copies a binary (typically os.Args[0], a test binary in go
// test's build directory, which only root may enter) to dst with mode 0755,
// so that a test can run it again as another user.
func CopyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
