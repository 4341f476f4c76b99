package stack

import (
	"errors"
	"syscall"
)

// prSetChildSubreaper is prctl's PR_SET_CHILD_SUBREAPER.
const prSetChildSubreaper = 36

// becomeSubreaper makes the processes up.sh starts, orphaned when it exits, children of
// this test process instead of init, so that the test can reap them and tell "exited"
// from "still running" exactly.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}

// reap collects pid if it has exited. It reports whether the process is gone: reaped
// now, or not a child of this process (then the caller looks at /proc).
func reap(pid int) (gone bool, err error) {
	var ws syscall.WaitStatus
	got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
	if errors.Is(err, syscall.ECHILD) {
		return false, err
	}
	return got == pid, err
}
