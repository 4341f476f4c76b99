//go:build !linux

package stack

import "errors"

func becomeSubreaper() error { return errors.New("not supported") }

func reap(pid int) (bool, error) { return false, errors.New("not supported") }
