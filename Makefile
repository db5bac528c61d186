# holiday — a few self-describing targets. `make help` lists them.
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
export CGO_ENABLED := 0

.PHONY: help demo check build build-all test test-short lab-up lab-down bench bench-repo bench-repo-s3 bench-fleet-plan lint

help: ## list the targets
	@awk -F':.*## ' '/^[a-z0-9-]+:.*## /{printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

demo: ## the main job on the embedded default: lab up, then holiday against it (root)
	scripts/demo.sh

check: ## the README's test command: install, lab up, every test, lab down (root)
	scripts/check.sh

build: ## static binary for this machine into bin/holiday
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/holiday ./cmd/holiday

build-all: ## static binaries for linux amd64 and arm64 into bin/
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/holiday-linux-amd64 ./cmd/holiday
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/holiday-linux-arm64 ./cmd/holiday

test: ## the whole test suite (needs the lab: make lab-up)
	$(GO) test -count=1 -timeout 45m ./...

test-short: ## unit tests only, no lab
	$(GO) test -short -count=1 ./...

lab-up: ## bring up the lab of real hosts (root; see lab/README.md)
	lab/up.sh

lab-down: ## tear the lab down, leaving nothing behind
	lab/down.sh

bench: bench-repo bench-fleet-plan bench-fleet bench-devices bench-backup ## every benchmark, side by side with its peer (restic, Ansible), as ratios

RESTIC18 ?= $(shell $(GO) env GOPATH)/bin/restic-0.18.1

bench-repo: build ## repository: holiday vs restic 0.14 and 0.18.1, same data, median of 3 (~10 min)
	@test -x $(RESTIC18) || { mkdir -p $(dir $(RESTIC18)) && GOFLAGS= GOBIN=$$(mktemp -d) sh -c '$(GO) install github.com/restic/restic/cmd/restic@v0.18.1 && mv $$GOBIN/restic $(RESTIC18)'; }
	$(GO) run ./backup/benchrepo -holiday bin/holiday -restic /usr/bin/restic -restic18 $(RESTIC18)

LAB_ENV ?= $(or $(HOLIDAY_LAB_DIR),/var/tmp/holiday-lab)/env
BENCH_S3_ARGS ?= -only tree,image,prune

.PHONY: bench-s3
bench-s3: bench-repo-s3 ## the same as bench-repo-s3 (the name issue 11 uses)

bench-repo-s3: build ## repository on the lab's S3 server (versitygw): holiday vs restic over S3, first backups of tree and image, forget + prune with 30 % unused, median of 3 (lab up; BENCH_S3_ARGS= for every step)
	@test -f $(LAB_ENV) || { echo "bench-repo-s3: the lab is not up (make lab-up)"; exit 1; }
	set -a; . $(LAB_ENV); set +a; \
	AWS_ACCESS_KEY_ID=$$LAB_S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$$LAB_S3_SECRET_KEY AWS_REGION=$$LAB_S3_REGION \
	$(GO) run ./backup/benchrepo -holiday bin/holiday -restic /usr/bin/restic $(if $(wildcard $(RESTIC18)),-restic18 $(RESTIC18)) \
		-s3 s3:$$LAB_S3_ENDPOINT/holiday-bench-$$(date +%s) $(BENCH_S3_ARGS)

bench-fleet-plan: ## holiday plan vs. read-only Ansible over 10 light lab hosts, forks 5/10, cold/warm (root; LIGHT_HOSTS=10 lab; apt install ansible)
	bench/fleet-plan.sh

.PHONY: bench-devices
bench-devices: ## 50 simulated devices of all 7 models, concurrency 16, vs RANCID's clogin/jlogin on the IOS/EOS/Junos ones (apt install rancid)
	$(GO) run ./backup/device/benchdevices -n 50 -concurrency 16

.PHONY: bench-backup
bench-backup: ## sysv1's host backup vs. restic on the host over SFTP: a 200 MB/5,000-file tree first and unchanged, a 1 GiB disk through SSH vs. restic --stdin; a PostgreSQL dump vs. pg_dump; median of 3, ratios, bytes crossing SSH (root; lab up)
	bench/backup.sh
	bench/backup-pg.sh

.PHONY: bench-fleet bench-fleet-firewall bench-stops
bench-fleet: ## holiday lockdown+restore vs. Ansible service playbooks over 10 light lab hosts, forks 5/10, cold/warm; then bench-fleet-firewall and bench-stops (root; LIGHT_HOSTS=10 lab; apt install ansible)
	bench/fleet.sh
	bench/fleet-firewall.sh
	bench/stops.sh

bench-fleet-firewall: ## the same plus the lockdown firewall (v4+v6, 3 allows, log_drops) vs. ansible.builtin.iptables, forks=10, cold/warm, rules checked identical after every restore (HOSTS=50 with a LIGHT_HOSTS=50 lab: 10 then 50 hosts in one run, with how each tool grows; RUNS=1 for a quick run)
	bench/fleet-firewall.sh

bench-stops: ## one systemd host stopping 9 units: lockdown vs. its slowest unit's stop alone (goal <= 1.5x), restore (root; lab up)
	bench/stops.sh

lint: ## gofmt, go vet, staticcheck
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags holidaytest ./actions/
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 -tags holidaytest ./actions/

.PHONY: bench-check
bench-check: ## holiday check vs. rkhunter --check --sk and chkrootkit on sys1, clean and with lab/plant.sh's planted compromise: time, false alarms, planted kinds named (root; lab up; apt install chkrootkit)
	bench/check.sh
