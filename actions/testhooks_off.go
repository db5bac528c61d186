//go:build !holidaytest

package actions

// The release build's test hooks do nothing (testhooks.go has them).

func (o *Options) crashAt(kind, point string) {}

func crashPoint(kind, point string) {}

func powerTestMode() bool { return false }

func firewallTestHook() string { return "" }

func deadmanSecs() int { return DefaultDeadmanSecs }
