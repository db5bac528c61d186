package facts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Firewall says which packet-filter backends hold rules and who else
// manages them. Lockdown refuses a host with rules in both backends or
// with a co-owner rather than fight them (DESIGN §6.2).
type Firewall struct {
	// Backends in use: "legacy" (iptables-legacy has rules or a
	// non-ACCEPT policy), "nft" (iptables-nft does). Empty: no rules.
	Backends []string `json:"backends"`
	// Default is what plain `iptables` points to: legacy or nft ("" when
	// iptables is not installed).
	Default string `json:"default,omitempty"`
	// Tables per backend and family that hold something, as
	// "legacy/ip4/filter".
	Tables []string `json:"tables,omitempty"`
	// Rules counts -A lines per backend ("legacy", "nft"), both families.
	Rules map[string]int `json:"rules,omitempty"`
	// CoOwners are other managers of the rules: firewalld, ufw, docker,
	// nftables (native nft tables iptables-nft did not make).
	CoOwners []string `json:"co_owners,omitempty"`
	// Evidence says, per co-owner, what showed it: "chain DOCKER in
	// nft/ip4/filter", "process firewalld", "table inet firewalld".
	Evidence map[string][]string `json:"evidence,omitempty"`
	// Tools says which save commands were found.
	Tools []string `json:"tools,omitempty"`
}

// saveStats summarises one iptables-save output.
type saveStats struct {
	tables []string // tables with rules, user chains or a non-ACCEPT policy
	rules  int
	chains []string // every chain seen, as "table/chain"
}

// parseSave reads iptables-save output. Built-in chains with policy
// ACCEPT and no rules count as empty: that is what a fresh kernel shows.
func parseSave(out []byte) saveStats {
	var s saveStats
	var table string
	used := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if len(f) >= 2 {
				s.chains = append(s.chains, table+"/"+f[0])
				if f[1] == "-" || (f[1] != "ACCEPT") {
					used[table] = true
				}
			}
		case strings.HasPrefix(line, "-A "):
			s.rules++
			used[table] = true
		}
	}
	for t := range used {
		s.tables = append(s.tables, t)
	}
	sort.Strings(s.tables)
	return s
}

func collectFirewall(ctx context.Context, a Args, f *Facts) error {
	fw := &f.Firewall
	fw.Rules = map[string]int{}
	var errs []error
	owners := map[string][]string{}
	found := func(owner, what string) { owners[owner] = append(owners[owner], what) }
	backends := map[string]bool{}
	for _, b := range []struct{ backend, family, tool string }{
		{"legacy", "ip4", "iptables-legacy-save"},
		{"legacy", "ip6", "ip6tables-legacy-save"},
		{"nft", "ip4", "iptables-nft-save"},
		{"nft", "ip6", "ip6tables-nft-save"},
	} {
		if lookPath(b.tool) == "" {
			continue
		}
		fw.Tools = append(fw.Tools, b.tool)
		out, err := output(ctx, 30*time.Second, b.tool)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st := parseSave(out)
		for _, t := range st.tables {
			fw.Tables = append(fw.Tables, b.backend+"/"+b.family+"/"+t)
			backends[b.backend] = true
		}
		fw.Rules[b.backend] += st.rules
		for _, tc := range st.chains {
			table, c, _ := strings.Cut(tc, "/")
			in := " in " + b.backend + "/" + b.family + "/" + table
			switch {
			case strings.HasPrefix(c, "ufw-") || strings.HasPrefix(c, "ufw6-"):
				found("ufw", "chain "+c+in)
			case c == "DOCKER" || strings.HasPrefix(c, "DOCKER-"):
				found("docker", "chain "+c+in)
			}
		}
	}
	for _, b := range []string{"legacy", "nft"} {
		if backends[b] {
			fw.Backends = append(fw.Backends, b)
		}
	}
	fw.Default = iptablesDefault()

	for _, p := range processNames() {
		switch p {
		case "firewalld":
			found("firewalld", "process firewalld")
		case "dockerd":
			found("docker", "process dockerd")
		}
	}
	if ufwEnabled() {
		found("ufw", "ENABLED=yes in /etc/ufw/ufw.conf")
	}
	if native, err := nativeNftTables(ctx); err != nil {
		if !errors.Is(err, errNoTool) {
			errs = append(errs, err)
		}
	} else {
		for _, t := range native {
			// firewalld's nft backend keeps its rules in "inet firewalld".
			owner := "nftables"
			if strings.HasSuffix(t, "/firewalld") {
				owner = "firewalld"
			}
			found(owner, "table "+strings.ReplaceAll(strings.TrimPrefix(t, "nftables/"), "/", " "))
		}
		fw.Tables = append(fw.Tables, native...)
	}
	for o, ev := range owners {
		fw.CoOwners = append(fw.CoOwners, o)
		if fw.Evidence == nil {
			fw.Evidence = map[string][]string{}
		}
		fw.Evidence[o] = ev
	}
	sort.Strings(fw.CoOwners)
	return errors.Join(errs...)
}

// iptablesDefault follows the iptables alternative to its backend.
func iptablesDefault() string {
	p := lookPath("iptables")
	if p == "" {
		return ""
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ""
	}
	switch base := filepath.Base(real); {
	case strings.Contains(base, "legacy"):
		return "legacy"
	case strings.Contains(base, "nft"):
		return "nft"
	case base == "xtables-legacy-multi":
		return "legacy"
	case base == "xtables-nft-multi":
		return "nft"
	}
	return ""
}

// ufwEnabled reads ufw's own switch.
func ufwEnabled() bool {
	b, err := os.ReadFile("/etc/ufw/ufw.conf")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k == "ENABLED" {
			return strings.EqualFold(strings.Trim(v, `"' `), "yes")
		}
	}
	return false
}

// iptablesNftTables are the tables iptables-nft creates; anything else in
// `nft list tables` was made by something else (nftables.service,
// firewalld's nft backend, a hand-written ruleset).
var iptablesNftTables = map[string]bool{
	"ip filter": true, "ip nat": true, "ip mangle": true, "ip raw": true, "ip security": true,
	"ip6 filter": true, "ip6 nat": true, "ip6 mangle": true, "ip6 raw": true, "ip6 security": true,
	"arp filter": true, "bridge filter": true, "bridge nat": true,
}

func nativeNftTables(ctx context.Context) ([]string, error) {
	out, err := output(ctx, 20*time.Second, "nft", "list", "tables")
	if err != nil {
		return nil, err
	}
	var native []string
	for _, line := range strings.Split(string(out), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "table ")
		if !ok || iptablesNftTables[name] {
			continue
		}
		native = append(native, "nftables/"+strings.ReplaceAll(name, " ", "/"))
	}
	return native, nil
}
