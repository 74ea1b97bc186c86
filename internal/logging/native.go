package logging

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// journalSocket is where journald takes native-protocol datagrams.
const journalSocket = "/run/systemd/journal/socket"

// maxDatagram stays well under the socket's limit; anything larger goes
// through go-systemd, which passes big entries in a memfd.
const maxDatagram = 128 << 10

// nativeSender writes journal entries on a socket of its own, so that Drain
// can tell when journald has taken them all. go-systemd's journal.Send keeps
// its socket private, which makes that impossible.
//
// Why it matters: journald names the unit (_SYSTEMD_UNIT, what `journalctl -u`
// matches) by reading the sender's /proc/PID/cgroup when it processes each
// datagram. A short-lived sender that exits first leaves its last entries
// without a unit, so they vanish from `journalctl -u postgresqlBackup-db1`.
type nativeSender struct {
	mu   sync.Mutex
	conn *net.UnixConn
}

func (n *nativeSender) send(msg string, p journal.Priority, vars map[string]string) error {
	var b bytes.Buffer
	appendField(&b, "PRIORITY", string(rune('0'+int(p))))
	appendField(&b, "MESSAGE", msg)
	for k, v := range vars {
		appendField(&b, k, v)
	}
	if b.Len() > maxDatagram {
		return journal.Send(msg, p, vars)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: journalSocket, Net: "unixgram"})
		if err != nil {
			return err
		}
		n.conn = c
	}
	_, err := n.conn.Write(b.Bytes())
	return err
}

// appendField encodes one field; values with newlines use the binary form.
func appendField(b *bytes.Buffer, key, value string) {
	if !strings.ContainsRune(value, '\n') {
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(value)
		b.WriteByte('\n')
		return
	}
	b.WriteString(key)
	b.WriteByte('\n')
	binary.Write(b, binary.LittleEndian, uint64(len(value)))
	b.WriteString(value)
	b.WriteByte('\n')
}

// Drain waits, at most timeout, until journald has dequeued every entry sent
// on this socket: a datagram's memory stays charged to the sender (SIOCOUTQ)
// until the receiver reads it, and journald handles each datagram as soon as
// it reads it, while this process still exists to be looked up.
func (n *nativeSender) Drain(timeout time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		return
	}
	raw, err := n.conn.SyscallConn()
	if err != nil {
		return
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		queued := 0
		raw.Control(func(fd uintptr) { queued, err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
		if err != nil || queued == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
