package plans

import "time"

// Plan is one decoded plan file (DESIGN §4). Fields mirror the YAML keys
// given in their tags; `plan:"required"` marks keys that must be present.
// Top-level keys starting with x- are ignored, so anchors can live there
// (x-web: &web {...}), as in Compose files.
//
// Hosts come from three places: the plan's own `hosts:` list, the
// inventory file it names, and — for their shared settings — `defaults:`
// and `groups:`. [Plan.Hosts] returns them resolved; HostEntries is the raw
// `hosts:` list as written.
type Plan struct {
	// File is the path the plan was loaded from, as given to Load.
	File string `yaml:"-"`

	// Version of the plan format; only 1 exists.
	Version int `yaml:"version" plan:"required"`
	// Name labels runs, snapshots and reports (e.g. spring-festival-2027).
	Name string `yaml:"name"`
	// Window is when the break starts and ends; the daemon schedules inside
	// it and lockdown pins snapshots until its end plus 30 days.
	Window *Window `yaml:"window"`
	// Management lists the ranges (bastion, VPN, on-call, monitoring) that
	// a lockdown firewall never cuts off. Required, and not empty: a plan
	// that does not say where operators come from cannot lock anything down.
	Management []Prefix `yaml:"management" plan:"required"`
	// Repository is where backups go.
	Repository *Repository `yaml:"repository"`
	// SSH holds how the control node reaches every host.
	SSH *SSH `yaml:"ssh"`
	// Defaults are host fields every host inherits (lowest precedence).
	Defaults *HostFields `yaml:"defaults"`
	// Groups are named sets of host fields; a host takes those of the
	// groups it lists in `groups:` and of its inventory groups.
	Groups map[string]*HostFields `yaml:"groups"`
	// Inventory is the path of an Ansible INI inventory, relative to the
	// plan file. Its hosts become plan hosts; its groups may be named in
	// `groups:` and in hosts' `groups:` lists.
	Inventory string `yaml:"inventory"`
	// HostEntries is the `hosts:` list as written in the plan.
	HostEntries []*HostEntry `yaml:"hosts"`
	// Devices are network devices whose configs are saved and backed up.
	Devices []*Device `yaml:"devices"`
	// Schedule drives `holiday daemon` during the window.
	Schedule *Schedule `yaml:"schedule"`
	// Alerts says where the daemon reports drift and failures.
	Alerts *Alerts `yaml:"alerts"`

	inv      *Inventory     // parsed inventory, if any
	pos      map[string]Pos // field path → position of its value
	resolved []*Host        // set by resolve
}

// Window is the holiday: start and end as RFC 3339 timestamps with an
// offset (2027-02-05T18:00:00+08:00). End must be after start.
type Window struct {
	Start time.Time `yaml:"start" plan:"required"`
	End   time.Time `yaml:"end" plan:"required"`
}

// Repository names a backup repository (restic format v2) and how to get
// its password. The password is never written in the plan.
type Repository struct {
	// URL is a local path or s3:https://host/bucket/prefix.
	URL string `yaml:"url" plan:"required"`
	// PasswordEnv names an environment variable holding the password.
	PasswordEnv string `yaml:"password_env"`
	// PasswordFile is a file holding the password. It is not read when the
	// plan is validated (only checked to exist with Options.CheckFiles).
	PasswordFile string `yaml:"password_file"`
	// S3 says how to reach an s3: repository; without it the AWS SDK's
	// usual chain finds the credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE,
	// ~/.aws/credentials).
	S3 *RepositoryS3 `yaml:"s3"`
	// CopyTo is an optional second repository; lockdown copies each new
	// snapshot there, so one copy is always somewhere else.
	CopyTo *Repository `yaml:"copy_to"`
	// ObjectLock is the S3 Object Lock `holiday repo init -f PLAN` gives
	// a new repository: every file but locks retained Days in Mode, so
	// that nobody with the same credentials (a compromised control node)
	// can delete the backups before then. Once made, the setting is the
	// repository's own (kept in its config); `holiday plan` reports a
	// repository whose setting differs from the plan's.
	ObjectLock *ObjectLock `yaml:"object_lock"`
}

// ObjectLock is a repository's Object Lock retention.
type ObjectLock struct {
	Days int `yaml:"days" plan:"required"`
	// Mode is governance (the default: a user with the bypass permission
	// may lift it) or compliance (nobody can, until the date).
	Mode LockMode `yaml:"mode"`
}

// ModeOrDefault is Mode, governance when unset.
func (o *ObjectLock) ModeOrDefault() string {
	if o.Mode == "" {
		return "governance"
	}
	return string(o.Mode)
}

// RepositoryS3 holds where an S3 repository's credentials come from
// (never the credentials) and how to address the server.
type RepositoryS3 struct {
	// The access key ID and the secret access key, each from a variable
	// or a file (one of the two); both or neither.
	AccessKeyIDEnv      string `yaml:"access_key_id_env"`
	AccessKeyIDFile     string `yaml:"access_key_id_file"`
	SecretAccessKeyEnv  string `yaml:"secret_access_key_env"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// CredentialsFile is an AWS shared-credentials file (INI), read with
	// Profile; not together with the fields above.
	CredentialsFile string `yaml:"credentials_file"`
	Profile         string `yaml:"profile"`
	// Region defaults to the SDK's (AWS_REGION), else us-east-1.
	Region string `yaml:"region"`
	// PathStyle forces path-style (true) or virtual-hosted (false)
	// addressing; unset, hosts outside amazonaws.com get path-style.
	PathStyle *bool `yaml:"path_style"`
	// EC2Metadata lets the SDK ask the EC2 instance-metadata service for
	// credentials (an instance role); never probed otherwise.
	EC2Metadata bool `yaml:"ec2_metadata"`
}

// SSH is how the control node connects to hosts. Host entries may
// override User and Port.
type SSH struct {
	User string `yaml:"user"`
	Port int    `yaml:"port"`
	// Identity is a private key file (not read at validate time).
	Identity string `yaml:"identity"`
	// KnownHosts is the known_hosts file host keys are checked against.
	KnownHosts string `yaml:"known_hosts"`
	// Become is how the agent gets root: sudo (sudo -n), root (log in as
	// root) or none.
	Become Become `yaml:"become"`
	// Jump is a bastion host ([user@]host[:port]) to connect through.
	Jump string `yaml:"jump"`
	// AgentPath names a pre-installed agent binary for sites whose sudo
	// rules allow only that path.
	AgentPath string `yaml:"agent_path"`
	// ConnectTimeout bounds each TCP connect and SSH handshake.
	ConnectTimeout Duration `yaml:"connect_timeout"`
}

// HostFields are the settings a host, a group or the defaults may carry.
//
// Resolution (see [Plan.Hosts]): for each field, the last of these that
// sets it wins — defaults, then each group in the host's order, then the
// host's own entry. Lists such as stop and backup are replaced as a whole,
// never merged, so a host can always say exactly what it wants; a pointer
// or list left unset inherits, and an explicit empty list (`stop: []`)
// clears what a group set.
type HostFields struct {
	// Address is an IP address or DNS name; hosts only.
	Address string `yaml:"address"`
	// Address6 is the host's IPv6 address when Address is IPv4. It tells
	// lint the host has IPv6 (holiday also finds IPv6 live in `holiday plan`).
	Address6 string `yaml:"address6"`
	Port     int    `yaml:"port"`
	User     string `yaml:"user"`
	// Risk orders work: high-risk hosts are handled and checked first.
	Risk Risk `yaml:"risk"`
	// Backup lists what to back up, or says `backup: none`. Every resolved
	// host must have one or the other.
	Backup *Backup `yaml:"backup"`
	// Stop lists services (systemd units or SysV scripts) stopped at
	// lockdown and started again at restore.
	Stop []string `yaml:"stop"`
	// Firewall is the lockdown firewall; hosts without one keep theirs.
	Firewall *Firewall `yaml:"firewall"`
	// Power powers the host off last at lockdown.
	Power *Power `yaml:"power"`
	// Hooks are commands run on the host before lockdown and after restore.
	Hooks *Hooks `yaml:"hooks"`
	// Reboot: rehearse reboots the host once before the break and checks
	// it comes back with its services.
	Reboot Reboot `yaml:"reboot"`
	// WebRoots are the host's document roots: the integrity baseline
	// hashes them and holiday check searches their scripts for webshells
	// (DESIGN §8). Absolute paths, not /.
	WebRoots []string `yaml:"web_roots"`
	// OnCompromise: what restore's gate does with a host it keeps closed
	// for indicators — keep (the default: locked down as it is) or
	// isolate (only the management path, in and out).
	OnCompromise OnCompromise `yaml:"on_compromise"`
}

// HostEntry is one item of the plan's `hosts:` list. An entry whose name
// matches an inventory host adds to (and overrides) that host; any other
// entry is a new host and needs an address.
type HostEntry struct {
	Name string `yaml:"name" plan:"required"`
	// Groups are applied in order after the defaults and any inventory
	// groups, and before the host's own fields.
	Groups     []string `yaml:"groups"`
	HostFields `yaml:",inline"`
}

// Backup is a host's backup sources, or None for an explicit `backup: none`.
type Backup struct {
	None    bool
	Sources []*BackupSource
}

// BackupSource is exactly one of Files, Disk, Postgres or MySQL.
type BackupSource struct {
	// Files are absolute paths backed up as file trees.
	Files []string `yaml:"files"`
	// Exclude are glob patterns left out of Files.
	Exclude []string `yaml:"exclude"`
	// Disk is a block device imaged with fixed-size blocks.
	Disk string `yaml:"disk"`
	// BlockSize for Disk; at least 1MiB (the default 4MiB).
	BlockSize Size `yaml:"block_size"`
	// Freeze freezes the filesystem mounted from Disk (fsfreeze) while it
	// is read; without it the snapshot is only crash-consistent.
	Freeze bool `yaml:"freeze"`
	// Postgres dumps PostgreSQL databases.
	Postgres *Postgres `yaml:"postgres"`
	// MySQL dumps MySQL/MariaDB databases.
	MySQL *MySQL `yaml:"mysql"`
}

// Postgres says which PostgreSQL databases to dump.
type Postgres struct {
	Databases []string `yaml:"databases"`
	All       bool     `yaml:"all"`
	// Globals dumps roles and tablespaces (pg_dumpall --globals-only).
	Globals bool   `yaml:"globals"`
	User    string `yaml:"user"`
	// RestoreCheck restores each dump into a scratch database to verify it.
	RestoreCheck bool `yaml:"restore_check"`
	// Compress is pg_dump's --compress level (0–9) for the dumps as they
	// leave the host. The default, 0, sends them uncompressed and the
	// repository compresses them (zstd): pg_dump's own compression is
	// single-threaded and most of its time (a 440 MB database: 9.0 s
	// with it, 1.8 s without), and the repository ends up smaller. A
	// level sends ~2.2x fewer bytes over a slow link between host and
	// control node, at pg_dump's pace.
	Compress *int `yaml:"compress"`
}

// MySQL says which MySQL/MariaDB databases to dump.
type MySQL struct {
	Databases []string `yaml:"databases"`
	All       bool     `yaml:"all"`
	// RestoreCheck loads each dump into a scratch database to verify it.
	RestoreCheck bool `yaml:"restore_check"`
}

// Firewall is the lockdown firewall for one host: everything inbound not
// allowed here, not on the management path and not a reply is dropped, for
// IPv4 and IPv6 alike (DESIGN §6).
type Firewall struct {
	Allow []*Allow `yaml:"allow"`
	// LogDrops logs dropped packets (rate limited).
	LogDrops bool `yaml:"log_drops"`
	// IPv6 says what IPv6 gets when some allow has only IPv4 sources.
	IPv6 IPv6Policy `yaml:"ipv6"`
}

// Allow opens TCP and/or UDP ports to sources. With no From, any source.
type Allow struct {
	TCP  Ports    `yaml:"tcp"`
	UDP  Ports    `yaml:"udp"`
	From []Prefix `yaml:"from"`
}

// Power powers a host off at the end of lockdown and records how it comes
// back.
type Power struct {
	Off bool `yaml:"off"`
	// On is how the host is switched back on: manual, wol or ipmi.
	On PowerOn `yaml:"on"`
	// Contact is who switches it on (printed by restore).
	Contact string `yaml:"contact"`
	// MAC is the address Wake-on-LAN packets are sent to (on: wol).
	MAC              string `yaml:"mac"`
	IPMIAddress      string `yaml:"ipmi_address"`
	IPMIUser         string `yaml:"ipmi_user"`
	IPMIPasswordEnv  string `yaml:"ipmi_password_env"`
	IPMIPasswordFile string `yaml:"ipmi_password_file"`
}

// Hooks are shell commands run on the host (as root) around the break.
type Hooks struct {
	// Before run at lockdown before anything else changes on the host; a
	// failing one stops that host's lockdown.
	Before []string `yaml:"before"`
	// After run last at restore (and when a failed lockdown is reverted),
	// so they should be safe to run twice. See actions/hook.go.
	After []string `yaml:"after"`
}

// Device is a network device reached over its SSH CLI; its running config
// is saved (optionally to startup) and backed up.
type Device struct {
	Name         string `yaml:"name" plan:"required"`
	Address      string `yaml:"address" plan:"required"`
	Port         int    `yaml:"port"`
	Model        Model  `yaml:"model" plan:"required"`
	User         string `yaml:"user" plan:"required"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// Identity is a private key file, instead of or beside a password.
	Identity string `yaml:"identity"`
	// EnablePasswordEnv and EnablePasswordFile give the password of the
	// privilege raise after login (IOS and EOS enable, Comware super),
	// for devices that ask for one.
	EnablePasswordEnv  string `yaml:"enable_password_env"`
	EnablePasswordFile string `yaml:"enable_password_file"`
	// Save copies the running config to startup before backing it up.
	Save bool `yaml:"save"`
	// LegacyKex allows old key exchanges and ciphers for old gear.
	LegacyKex bool `yaml:"legacy_kex"`
}

// Schedule is when the daemon backs up and checks during the window.
type Schedule struct {
	// Backup and Check are cron specs: five fields, an optional
	// CRON_TZ=Zone prefix, or @daily-style descriptors and @every 1h.
	Backup Cron `yaml:"backup"`
	Check  Cron `yaml:"check"`
	// Missed is what happens to runs missed while the daemon was down.
	Missed Missed `yaml:"missed"`
}

// Alerts is where the daemon reports.
type Alerts struct {
	Webhook string `yaml:"webhook"`
	Email   *Email `yaml:"email"`
}

// Email alerts go through an SMTP server (host:port).
type Email struct {
	// To is one address or a list of them.
	To           StringList `yaml:"to" plan:"required"`
	SMTP         string     `yaml:"smtp" plan:"required"`
	From         string     `yaml:"from"`
	User         string     `yaml:"user"`
	PasswordEnv  string     `yaml:"password_env"`
	PasswordFile string     `yaml:"password_file"`
}
