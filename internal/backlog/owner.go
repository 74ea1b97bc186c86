package backlog

import (
	"fmt"
	"os"
	"syscall"
)

// owner is who everything the backlog creates must belong to. The archive
// units run as the state directory's owner (NixOS: postgres), but root may
// run archive or retry on the same backlog (root's wrapper); what root
// leaves behind (a 0600 entry.json, a 0750 folder, the lock file) would
// lock the service out of its own backlog. So root hands each file and
// folder it creates to the state directory's owner and group. A nil owner
// (not running as root) leaves ownership to the kernel.
type owner struct{ uid, gid int }

// ownerOf returns the state directory's owner when running as root.
func ownerOf(stateDir string) (*owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	st, err := os.Stat(stateDir)
	if err != nil {
		return nil, err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no owner to hand the backlog's files to", stateDir)
	}
	return &owner{uid: int(sys.Uid), gid: int(sys.Gid)}, nil
}

// path hands the file or folder at p over (a link itself, never its target).
func (o *owner) path(p string) error {
	if o == nil {
		return nil
	}
	if err := os.Lchown(p, o.uid, o.gid); err != nil {
		return fmt.Errorf("handing %s to the state directory's owner: %w", p, err)
	}
	return nil
}

// file hands an open file over.
func (o *owner) file(f *os.File) error {
	if o == nil {
		return nil
	}
	if err := f.Chown(o.uid, o.gid); err != nil {
		return fmt.Errorf("handing %s to the state directory's owner: %w", f.Name(), err)
	}
	return nil
}
