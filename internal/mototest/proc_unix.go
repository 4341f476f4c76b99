//go:build unix

package mototest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the server in a process group of its own so that Stop reaches
// the interpreter even when the PATH entry is a shim that forks it.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killProcessGroup(cmd *exec.Cmd) {
	// The group id is the leader's pid; the error only says the group is already gone.
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = cmd.Process.Kill()
	}
}
