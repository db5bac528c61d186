package plans

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// memFS serves files from a map, for plans with inventories.
func memFS(files map[string]string) Options {
	return Options{ReadFile: func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}}
}

func mustLoad(t *testing.T, files map[string]string) *Plan {
	t.Helper()
	p, err := LoadWith("plan.yaml", memFS(files))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if es := Lint(p); es.HasErrors() {
		t.Fatalf("Lint: %v", es)
	}
	return p
}

const head = `version: 1
management: [10.0.0.0/24]
repository: {url: /srv/repo, password_env: REPO_PASS}
ssh: {user: ops, port: 2200}
`

func TestResolvePrecedence(t *testing.T) {
	p := mustLoad(t, map[string]string{"plan.yaml": head + `
defaults:
  risk: low
  backup: [{files: [/etc]}]
  stop: [cron]
groups:
  web: {stop: [php-fpm, nginx], risk: normal}
  critical: {risk: high}
  quiet: {stop: []}
hosts:
  - {name: a, address: 10.0.1.1}
  - {name: b, address: 10.0.1.2, groups: [web]}
  - {name: c, address: 10.0.1.3, groups: [web, critical], stop: [nginx]}
  - {name: d, address: 10.0.1.4, groups: [web, quiet], port: 22, user: root}
  - {name: e, address: 10.0.1.5, groups: [critical, web]}
`})
	type row struct {
		name string
		risk Risk
		stop []string
		port int
		user string
	}
	var got []row
	for _, h := range p.Hosts() {
		got = append(got, row{h.Name, h.Risk, h.Stop, h.Port, h.User})
	}
	want := []row{
		// high first (stable), then normal, then low
		{"c", RiskHigh, []string{"nginx"}, 2200, "ops"},
		{"b", RiskNormal, []string{"php-fpm", "nginx"}, 2200, "ops"},
		{"d", RiskNormal, []string{}, 22, "root"},
		{"e", RiskNormal, []string{"php-fpm", "nginx"}, 2200, "ops"}, // web listed after critical wins
		{"a", RiskLow, []string{"cron"}, 2200, "ops"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolved hosts:\n got %v\nwant %v", got, want)
	}
	c := p.Host("c")
	if s := c.Source("stop"); s != "hosts[c].stop" {
		t.Errorf("c stop source = %q", s)
	}
	if s := c.Source("risk"); s != "groups.critical.risk" {
		t.Errorf("c risk source = %q", s)
	}
	if s := c.Source("backup"); s != "defaults.backup" {
		t.Errorf("c backup source = %q", s)
	}
}

func TestResolveInventory(t *testing.T) {
	p := mustLoad(t, map[string]string{
		"plan.yaml": head + `
inventory: inv/hosts.ini
groups:
  web: {backup: [{files: [/var/www]}], stop: [nginx]}
  db: {backup: [{postgres: {all: true}}], risk: high}
  prod: {backup: none, stop: [cron]}
hosts:
  - {name: web02, stop: [], address: 10.9.9.9}
  - {name: extra, address: 10.0.5.5, groups: [db]}
`,
		"inv/hosts.ini": `
[web]
web[01:02] ansible_user=www
[db]
db1 ansible_host=10.0.2.1 ansible_port=2222
[prod:children]
web
db
[prod:vars]
ansible_user=produser
`})
	type row struct {
		name, addr string
		port       int
		user       string
		groups     []string
		stop       []string
		backup     string
	}
	var got []row
	for _, h := range p.Hosts() {
		b := "none"
		if !h.Backup.None {
			b = h.Source("backup")
		}
		got = append(got, row{h.Name, h.Address, h.Port, h.User, h.Groups, h.Stop, b})
	}
	want := []row{
		{"db1", "10.0.2.1", 2222, "produser", []string{"prod", "db"}, []string{"cron"}, "groups.db.backup"},
		{"extra", "10.0.5.5", 2200, "ops", []string{"db"}, nil, "groups.db.backup"},
		{"web01", "web01", 2200, "www", []string{"prod", "web"}, []string{"nginx"}, "groups.web.backup"},
		{"web02", "10.9.9.9", 2200, "www", []string{"prod", "web"}, []string{}, "groups.web.backup"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("resolved hosts:\n got %+v\nwant %+v", got, want)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	p := mustLoad(t, map[string]string{"plan.yaml": head + `
x-common: &common
  backup: [{files: [/etc]}]
  stop: [cron]
hosts:
  - <<: *common
    name: a
    address: 10.0.1.1
  - <<: *common
    name: b
    address: 10.0.1.2
    stop: [atd]
`})
	if got := p.Host("a").Stop; !reflect.DeepEqual(got, []string{"cron"}) {
		t.Errorf("a stop = %v", got)
	}
	if got := p.Host("b").Stop; !reflect.DeepEqual(got, []string{"atd"}) {
		t.Errorf("b stop = %v (explicit key must win over merge)", got)
	}
}

func TestCheckFiles(t *testing.T) {
	plan := head + `hosts: [{name: a, address: 10.0.1.1, backup: none}]
`
	plan = strings.Replace(plan, "password_env: REPO_PASS", "password_file: /nonexistent/repo.pass", 1)
	opt := memFS(map[string]string{"plan.yaml": plan})
	if _, err := LoadWith("plan.yaml", opt); err != nil {
		t.Fatalf("without CheckFiles: %v", err)
	}
	opt.CheckFiles = true
	_, err := LoadWith("plan.yaml", opt)
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Path != "repository.password_file" {
		t.Fatalf("with CheckFiles: %v", err)
	}
}

func TestCron(t *testing.T) {
	for _, ok := range []string{"0 3 * * *", "CRON_TZ=Asia/Shanghai 0 3 * * *", "TZ=UTC */15 * * * MON-FRI", "@every 1h", "@daily", "0 0 1,15 jan-jun ?", "5-10/2 * * * 0"} {
		if msg := checkCron(ok); msg != "" {
			t.Errorf("checkCron(%q) = %s", ok, msg)
		}
	}
	for _, bad := range []string{"", "0 3 * *", "60 * * * *", "* * 0 * *", "* * * 13 *", "* * * * 7", "*/0 * * * *", "@every", "@every 0s", "@sometimes", "CRON_TZ=Nowhere/Land 0 3 * * *", "CRON_TZ=UTC", "1-a * * * *", "5-1 * * * *", ", * * * *"} {
		if msg := checkCron(bad); msg == "" {
			t.Errorf("checkCron(%q) accepted a bad spec", bad)
		}
	}
}

func TestParseINI(t *testing.T) {
	inv, err := ParseINI("hosts.ini", strings.NewReader(`
# comment
; also a comment
ungrouped1 ansible_host=10.0.0.9
[web]
web[01:03].example.com
node[a:c]
n[1:5:2] key="a b"  # trailing comment
[web:vars]
ansible_user = deploy
`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	want := []string{"ungrouped1", "web01.example.com", "web02.example.com", "web03.example.com", "nodea", "nodeb", "nodec", "n1", "n3", "n5"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("hosts = %v\nwant %v", names, want)
	}
	if v := inv.HostVars("n3"); v["key"] != "a b" || v["ansible_user"] != "deploy" {
		t.Errorf("n3 vars = %v", v)
	}
	if g := inv.GroupsOf("ungrouped1"); len(g) != 0 {
		t.Errorf("ungrouped1 groups = %v", g)
	}
}
