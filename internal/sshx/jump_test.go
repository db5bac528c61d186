package sshx_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/internal/sshx/sshdtest"
)

// TestJumpHost puts the inner host in a network namespace the test
// process has no route to: only the bastion, in a namespace between the
// two, reaches it.
//
//	test ──10.213.1.0/30── bastion ns ──10.213.2.0/30── inner ns
func TestJumpHost(t *testing.T) {
	sshdtest.Require(t)
	id := fmt.Sprint(os.Getpid() % 10000)
	nsJ, nsI := "hxj"+id, "hxi"+id
	sshdtest.NetNS(t, nsJ)
	sshdtest.NetNS(t, nsI)
	sshdtest.Link(t, "", "hxr"+id, "10.213.1.1/30", nsJ, "hxj"+id, "10.213.1.2/30")
	sshdtest.Link(t, nsJ, "hxji"+id, "10.213.2.1/30", nsI, "hxij"+id, "10.213.2.2/30")
	// Without this the default route might lead somewhere that answers.
	if out, err := exec.Command("ip", "route", "add", "unreachable", "10.213.2.0/30").CombinedOutput(); err != nil {
		t.Fatalf("ip route add unreachable: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "route", "del", "unreachable", "10.213.2.0/30").Run() })

	bastion := sshdtest.Start(t, sshdtest.Config{NetNS: nsJ, Listen: "10.213.1.2"})
	inner := sshdtest.Start(t, sshdtest.Config{NetNS: nsI, Listen: "10.213.2.2"})
	dir := t.TempDir()
	key := sshdtest.NewKey(t, dir, "id_ed25519", "")
	bastion.Authorize(t, "root", key.Public)
	inner.Authorize(t, "root", key.Public)
	kh := sshdtest.WriteKnownHosts(t, dir, bastion.KnownHostsLine("ed25519"), inner.KnownHostsLine("ed25519"))
	opts := sshx.Options{Logger: testLogger(t), KnownHosts: []string{kh}, IdentityFiles: []string{key.Path},
		NoAgent: true, ConfigFile: "none", ConnectTimeout: 2 * time.Second}
	jump := fmt.Sprintf("root@%s", bastion.Addr())
	target := sshx.Target{Name: "db1", Host: inner.Host, Port: inner.Port, User: "root"}

	t.Run("direct is unreachable", func(t *testing.T) {
		_, err := sshx.Dial(ctxT(t), target, opts)
		if sshx.KindOf(err) != sshx.KindUnreachable {
			t.Fatalf("inner host reachable without the jump (%v); the test proves nothing", err)
		}
		t.Logf("direct: %v", err)
	})
	t.Run("through the jump", func(t *testing.T) {
		tg := target
		tg.Jump = jump
		start := time.Now()
		c, err := sshx.Dial(ctxT(t), tg, opts)
		if err != nil {
			t.Fatalf("Dial via %s: %v", jump, err)
		}
		defer c.Close()
		t.Logf("dial via jump: %s", time.Since(start))
		// $SSH_CONNECTION on the inner host names the bastion.
		if got := mustRun(t, c, "echo $SSH_CONNECTION"); !strings.HasPrefix(got, "10.213.2.1 ") {
			t.Fatalf("inner host sees the connection from %q, want the bastion 10.213.2.1", got)
		}
	})
	t.Run("inner host key is verified too", func(t *testing.T) {
		o := opts
		o.KnownHosts = []string{sshdtest.WriteKnownHosts(t, t.TempDir(), bastion.KnownHostsLine("ed25519"))}
		tg := target
		tg.Jump = jump
		_, err := sshx.Dial(ctxT(t), tg, o)
		if sshx.KindOf(err) != sshx.KindHostKeyUnknown || !strings.Contains(err.Error(), "via "+bastion.Host) {
			t.Fatalf("want inner host key unknown via the bastion, got %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("bastion host key unknown", func(t *testing.T) {
		o := opts
		o.KnownHosts = []string{sshdtest.WriteKnownHosts(t, t.TempDir(), inner.KnownHostsLine("ed25519"))}
		tg := target
		tg.Jump = jump
		_, err := sshx.Dial(ctxT(t), tg, o)
		if sshx.KindOf(err) != sshx.KindHostKeyUnknown || !strings.Contains(err.Error(), "jump host") {
			t.Fatalf("want jump host key unknown, got %v", err)
		}
		t.Logf("error: %v", err)
	})
	t.Run("ProxyJump from ssh config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "config")
		os.WriteFile(cfg, []byte(fmt.Sprintf(`Host bastion
  HostName %s
  Port %d
  User root

Host db1
  HostName %s
  Port %d
  User root
  ProxyJump bastion
`, bastion.Host, bastion.Port, inner.Host, inner.Port)), 0o600)
		o := opts
		o.ConfigFile = cfg
		c, err := sshx.Dial(ctxT(t), sshx.Target{Host: "db1"}, o)
		if err != nil {
			t.Fatalf("Dial db1 via config: %v", err)
		}
		defer c.Close()
		mustRun(t, c, "true")
	})
	t.Run("jump host gone during the handshake", func(t *testing.T) {
		// the test reaches the bastion through a front it can cut; the
		// target, which the bastion reaches on the test's side of the
		// link, cuts it as soon as the bastion connects, then closes
		front, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer front.Close()
		cut := make(chan struct{})
		go func() {
			c, err := front.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			b, err := net.Dial("tcp", bastion.Addr())
			if err != nil {
				return
			}
			defer b.Close()
			go io.Copy(b, c)
			go io.Copy(c, b)
			<-cut
		}()
		closer, err := net.Listen("tcp", "10.213.1.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer closer.Close()
		go func() {
			c, err := closer.Accept()
			if err != nil {
				return
			}
			// the client's version line: its handshake has begun
			if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
				close(cut)
				time.Sleep(100 * time.Millisecond)
			}
			c.Close()
		}()
		fport := front.Addr().(*net.TCPAddr).Port
		o := opts
		o.KnownHosts = []string{sshdtest.WriteKnownHosts(t, t.TempDir(),
			fmt.Sprintf("[127.0.0.1]:%d %s", fport, strings.SplitN(bastion.KnownHostsLine("ed25519"), " ", 2)[1]))}
		tg := sshx.Target{Name: "gone", Host: "10.213.1.1", Port: closer.Addr().(*net.TCPAddr).Port, User: "root",
			Jump: fmt.Sprintf("root@127.0.0.1:%d", fport)}
		_, err = sshx.Dial(ctxT(t), tg, o)
		if sshx.KindOf(err) != sshx.KindUnreachable || !strings.Contains(err.Error(), "the connection to the jump host") {
			t.Fatalf("want the jump host's connection named as broken, got %v", err)
		}
		t.Logf("error: %v", err)
	})
}
