package device

import (
	"regexp"
	"strings"
)

// Driver is one vendor CLI dialect, as data. Fetch reads nothing but
// these fields; adding a vendor is adding a Driver.
type Driver struct {
	Model string // the plan's model: word

	// UserSuffix is appended to the login name (RouterOS "+ct": no
	// colours, no terminal detection, so the export arrives as plain text).
	UserSuffix string

	// Exec runs ShowCommand on an exec channel (no pty, no prompt, no
	// pager): the channel's exit status tells a complete read from a cut
	// one. Used where the vendor supports it (Junos, RouterOS).
	Exec bool

	// Prompt matches the CLI prompt before it is learned (the whole
	// current line). After login holiday learns the exact prompt and
	// anchors on it, as RANCID's clogin does.
	Prompt *regexp.Regexp
	// Pager matches a pager prompt on the current line; PagerKey is sent
	// to get the next page.
	Pager    *regexp.Regexp
	PagerKey string
	// Errors match the device's "command refused" lines.
	Errors []*regexp.Regexp

	// Escalate raises privileges after login when the learned prompt
	// matches When: Command, then Password at PasswordPrompt if asked.
	Escalate *Escalate

	// OnOpen runs after login (and escalation): paging off and the like.
	OnOpen []string

	// ShowCommand prints the running configuration.
	ShowCommand string
	// StartupCommand prints the saved (startup) configuration, to find
	// unsaved changes; "" where the running config is the saved one
	// (Junos commits, RouterOS saves at once).
	StartupCommand string
	// Save copies running to startup; nil where there is nothing to save.
	Save *Save

	// Complete reports whether a configuration is whole: its end marker
	// is there. Output without it is a failure, never a short backup.
	Complete func(cfg string) bool
	// EndMarker describes Complete's marker for error messages.
	EndMarker string

	// Volatile lines change on every read without the config changing;
	// Normalize drops them before a diff.
	Volatile []*regexp.Regexp
	// Reencrypted is ciphertext that differs on every read of the same
	// secret; Normalize replaces the match's first group with a fixed word.
	Reencrypted []*regexp.Regexp
	// Secrets are masked in everything shown: each match's groups named
	// "s" (all of them) are replaced by <removed>.
	Secrets []*regexp.Regexp
	// SectionSecrets mask values whose syntax is a secret only inside a
	// section (RouterOS: name= under /snmp community): section header →
	// patterns applied to that section's lines.
	SectionSecrets map[string][]*regexp.Regexp
}

// Escalate is a privilege raise (IOS and EOS enable, Comware super).
type Escalate struct {
	When           *regexp.Regexp // on the learned prompt
	Command        string
	PasswordPrompt *regexp.Regexp
	// SamePrompt: the prompt does not change when privileges rise
	// (Comware's super); Refused lines then tell a failure.
	SamePrompt bool
	Refused    *regexp.Regexp
}

// Save is a save dialog: Command, then each question that appears is
// answered, until the prompt returns. If Check is set, Check runs first
// and the save happens only when its output matches Needed (FortiOS saves
// by itself unless cfg-save is manual).
type Save struct {
	Command   string
	Questions []Answer
	Check     string
	Needed    *regexp.Regexp
	// Success must appear in the dialog's output, when set.
	Success *regexp.Regexp
}

// Answer replies to a question matched on the current line.
type Answer struct {
	Question *regexp.Regexp
	Reply    string
}

var re = regexp.MustCompile

// lastLine returns the last line of cfg that is not blank, trimmed of
// trailing spaces.
func lastLine(cfg string) string {
	cfg = strings.TrimRight(cfg, " \t\r\n")
	if i := strings.LastIndexByte(cfg, '\n'); i >= 0 {
		cfg = cfg[i+1:]
	}
	return strings.TrimRight(cfg, " \t\r")
}

func endsWith(word string) func(string) bool {
	return func(cfg string) bool { return lastLine(cfg) == word }
}

// Common secret syntaxes, shared by the dialects that use them.
var (
	ciscoSecrets = []*regexp.Regexp{
		re(`(?m)^\s*(?:enable|username \S+(?: privilege \d+)?) (?:secret|password)(?: \d+| sha512)? (?P<s>\S+)`),
		re(`(?m)^\s*(?:\S+ )*(?:password|secret)(?: [0-9]{1,2})? (?P<s>\S+)\s*$`),
		re(`(?m)^\s*snmp-server community (?P<s>\S+)`),
		re(`(?m)^\s*snmp-server host \S+(?: (?:informs|traps|version \S+))* (?P<s>\S+)`),
		re(`(?m)^\s*snmp-server user \S+ \S+(?: \S+)* auth \S+ (?P<s>\S+)(?: priv \S+(?: \d+)? (?P<s>\S+))?`),
		re(`(?m)^\s*(?:tacacs-server|radius-server)(?: host \S+)?(?: \S+)*? key(?: \d+)? (?P<s>\S+)`),
		re(`(?m)^\s*key(?: \d+)? (?P<s>\S+)\s*$`),
		re(`(?m)^\s*crypto isakmp key(?: \d+)? (?P<s>\S+)`),
		re(`(?m)^\s*(?:pre-shared-key|key-string)(?: (?:local|remote|address \S+))?(?: \d+)? (?P<s>\S+)`),
		re(`(?m)^\s*(?:ip ospf|neighbor \S+) (?:message-digest-key \d+ md5|authentication-key|password)(?: \d+)? (?P<s>\S+)`),
	}
	// VRP and Comware: OSPF/IS-IS keys and SNMPv3 users
	authModeKey     = re(`\b(?:authentication-mode (?:md5|sha\d*|hmac-\S+|simple|aes\d*)|privacy-mode (?:des56|3des|aes\d*))(?: \d+)? (?:(?:cipher|simple|plain) )?(?P<s>\S+)`)
	privateKeyBlock = re(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n(?P<s>.*?)\r?\n-----END [A-Z ]*PRIVATE KEY-----`)
)

// Drivers are the supported dialects, by plan model.
var Drivers = map[string]*Driver{
	"cisco-ios": {
		Model:    "cisco-ios",
		Prompt:   re(`^[\w.:/-]+[>#]\s?$`),
		Pager:    re(`\s*--More--\s*$`),
		PagerKey: " ",
		Errors:   []*regexp.Regexp{re(`(?m)^% (?:Invalid input|Incomplete command|Ambiguous command|Unknown command)`)},
		Escalate: &Escalate{When: re(`>\s?$`), Command: "enable", PasswordPrompt: re(`^[Pp]assword:\s?$`)},
		OnOpen:   []string{"terminal length 0", "terminal width 0"},
		// IOS prints the running config after "Building configuration..."
		ShowCommand:    "show running-config",
		StartupCommand: "show startup-config",
		Save: &Save{Command: "write memory",
			Questions: []Answer{{re(`\[confirm\]\s?$`), ""}, {re(`Destination filename \[startup-config\]\?\s?$`), ""}},
			Success:   re(`\[OK\]`)},
		Complete:  endsWith("end"),
		EndMarker: `a last line "end"`,
		Volatile: []*regexp.Regexp{
			re(`^! Last configuration change at `),
			re(`^! NVRAM config last updated at `),
			re(`^! No configuration change since last restart`),
			re(`^ntp clock-period \d+`),
			re(`^Building configuration\.\.\.$`),
			re(`^Current configuration ?: \d+ bytes$`),
			re(`^Using \d+ out of \d+ bytes`),
		},
		Secrets: append(append([]*regexp.Regexp{}, ciscoSecrets...), privateKeyBlock),
	},
	"arista-eos": {
		Model:    "arista-eos",
		Prompt:   re(`^[\w.:/-]+(?:\([\w.-]+\))?[>#]\s?$`),
		Pager:    re(`\s*--More--\s*$`),
		PagerKey: " ",
		Errors:   []*regexp.Regexp{re(`(?m)^% (?:Invalid input|Incomplete command|Ambiguous command)`)},
		Escalate: &Escalate{When: re(`>\s?$`), Command: "enable", PasswordPrompt: re(`^[Pp]assword:\s?$`)},
		OnOpen:   []string{"terminal length 0", "terminal width 32767"},
		// sanitized output is EOS's default only for `show running-config
		// sanitized`; the plain command shows secrets, which the backup needs
		ShowCommand:    "show running-config",
		StartupCommand: "show startup-config",
		Save:           &Save{Command: "write memory", Success: re(`(?i)copy completed successfully|\[OK\]`)},
		Complete:       endsWith("end"),
		EndMarker:      `a last line "end"`,
		Volatile: []*regexp.Regexp{
			re(`^! Command: show (?:running|startup)-config`),
			re(`^! Time: `),
			re(`^! Startup-config last modified at `),
		},
		Secrets: append(append([]*regexp.Regexp{},
			re(`(?m)^\s*username \S+(?: privilege \d+)?(?: role \S+)? secret(?: sha512| \d+)? (?P<s>\S+)`),
			re(`(?m)^\s*enable (?:secret|password)(?: sha512| \d+)? (?P<s>\S+)`),
			re(`(?m)^\s*aaa root secret(?: sha512| \d+)? (?P<s>\S+)`),
		), append(ciscoSecrets, privateKeyBlock)...),
	},
	"junos": {
		Model:       "junos",
		Exec:        true,
		ShowCommand: "show configuration | display omit | no-more",
		Complete: func(cfg string) bool {
			l := lastLine(cfg)
			// the top-level closing brace, or a top-level statement
			return l == "}" || (l != "" && l[0] != ' ' && l[0] != '\t' && strings.HasSuffix(l, ";"))
		},
		EndMarker: `a last top-level line ("}")`,
		Volatile: []*regexp.Regexp{
			re(`^## Last commit: `),
			re(`^## Last changed: `),
		},
		Secrets: []*regexp.Regexp{
			re(`(?m)(?:encrypted-password|authentication-key|secret|simple-password|hello-authentication-key|md5 \d+ key) "?(?P<s>[^";\s]+)"?;`),
			re(`(?m)\b(?:pre-shared-key|ascii-text|hexadecimal) (?:ascii-text |hexadecimal )?"?(?P<s>[^";\s]+)"?;`),
			re(`(?m)^\s*community (?P<s>\S+) \{`),
			re(`(?m)^\s*(?:ssh-rsa|ssh-ed25519|ssh-ecdsa|ssh-dsa) "(?P<s>[^"]+)";`),
			privateKeyBlock,
		},
	},
	"routeros": {
		Model:       "routeros",
		UserSuffix:  "+ct",
		Exec:        true,
		ShowCommand: "/export show-sensitive",
		Complete: func(cfg string) bool {
			// no end marker: the exit status says the export finished;
			// what remains checkable is a whole last line that is not
			// continued with a backslash
			return strings.HasSuffix(cfg, "\n") && !strings.HasSuffix(strings.TrimRight(cfg, "\r\n"), `\`) &&
				strings.Contains(cfg, "by RouterOS")
		},
		EndMarker: "an export header and a whole last line",
		SectionSecrets: map[string][]*regexp.Regexp{
			"/snmp community": {re(`(?:^|\s)name=(?:"(?P<s>(?:[^"\\]|\\.)*)"|(?P<s>[^\s"]+))`)},
		},
		Volatile: []*regexp.Regexp{
			re(`^# \S+ \S+ by RouterOS `),
			re(`^# \w{3}/\d\d/\d{4} \d\d:\d\d:\d\d by RouterOS`),
		},
		Secrets: []*regexp.Regexp{
			re(`(?:^|\s)(?:password|secret|passphrase|wpa-pre-shared-key|wpa2-pre-shared-key|authentication-key|pre-shared-key|private-key|psk|community|auth-password|encryption-password)=(?:"(?P<s>(?:[^"\\]|\\.)*)"|(?P<s>[^\s"]+))`),
			privateKeyBlock,
		},
	},
	"fortios": {
		Model:    "fortios",
		Prompt:   re(`^[\w.-]+(?: \([\w.-]+\))? [#$]\s?$`),
		Pager:    re(`--More--\s*$`),
		PagerKey: " ",
		Errors:   []*regexp.Regexp{re(`(?m)^Command fail\. Return code`), re(`(?m)^Unknown action`)},
		// `show | grep .` prints everything without the pager, without
		// touching the device's console setting
		ShowCommand: "show | grep .",
		Save: &Save{Command: "execute cfg save", Check: "get system global | grep cfg-save",
			Needed: re(`cfg-save\s*:\s*(?:manual|revert)`)},
		Complete:  endsWith("end"),
		EndMarker: `a last line "end"`,
		Volatile: []*regexp.Regexp{
			re(`^#conf_file_ver=`),
			re(`^#buildno=`),
			re(`^\s*set (?:uptime|last-update|timestamp) `),
		},
		Reencrypted: []*regexp.Regexp{re(`\bENC (\S+)`)},
		SectionSecrets: map[string][]*regexp.Regexp{
			"config system snmp community": {re(`^\s*set name "?(?P<s>[^"\s]+)"?`)},
		},
		Secrets: []*regexp.Regexp{
			re(`(?m)^\s*set (?:password|passwd|psksecret|secret|key|auth-pwd|priv-pwd|passphrase|sae-password|ppk-secret|pre-shared-key|private-key|auth-password|community|tacacs-key|radius-key|sso-password|ldap-password)(?: ENC)? "?(?P<s>[^"\s]+)"?`),
			re(`(?m)^\s*edit "?(?P<s>[^"\s]+)"?\s*\n(?:\s*set (?:events|query-v[12c]-status|status) .*\n)*\s*set (?:hosts|query-v1-port|trap-v1-status)`),
			re(`(?s)set private-key "(?P<s>[^"]*)"`),
			privateKeyBlock,
		},
	},
	"huawei-vrp": {
		Model:          "huawei-vrp",
		Prompt:         re(`^(?:<[\w.:/-]+>|\[[~*]?[\w.:/-]+\])\s?$`),
		Pager:          re(`\s*---- More ----\s*$`),
		PagerKey:       " ",
		Errors:         []*regexp.Regexp{re(`(?m)^Error: `), re(`(?m)^\s*\^\s*$\n?^Error`)},
		OnOpen:         []string{"screen-length 0 temporary"},
		ShowCommand:    "display current-configuration",
		StartupCommand: "display saved-configuration",
		Save: &Save{Command: "save",
			Questions: []Answer{{re(`(?i)Are you sure to continue\?\s*\[Y/N\]:?\s*$`), "y"}},
			Success:   re(`(?i)save the configuration successfully|saved successfully`)},
		Complete:  endsWith("return"),
		EndMarker: `a last line "return"`,
		Volatile: []*regexp.Regexp{
			re(`^!Software Version `),
			re(`^!Last configuration was (?:updated|saved) at `),
			re(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{3})?(?: ?[+-]\d\d:\d\d)?(?: DST)?$`),
			re(`^!Time: `),
		},
		Reencrypted: []*regexp.Regexp{re(`(%\^%#.*?%\^%#|%\$%\$.*?%\$%\$|%@%@.*?%@%@)`)},
		Secrets: []*regexp.Regexp{
			re(`(?P<s>%\^%#.*?%\^%#|%\$%\$.*?%\$%\$|%@%@.*?%@%@)`),
			re(`(?m)^\s*(?:local-user \S+ password|super password)(?: level \d+)? (?:cipher|irreversible-cipher|simple) (?P<s>\S+)`),
			re(`(?m)\b(?:password|pre-shared-key|authentication-key|shared-key)(?: cipher| simple| irreversible-cipher)? (?P<s>\S+)\s*$`),
			re(`(?m)^\s*snmp-agent community (?:read|write) (?:cipher )?(?P<s>\S+)`),
			re(`(?m)^\s*snmp-agent usm-user v3 \S+ (?:\S+ )?(?:authentication-mode \S+|privacy-mode \S+) (?:cipher )?(?P<s>\S+)`),
			re(`(?m)^\s*(?:hwtacacs-server|radius-server) shared-key (?:cipher |simple )?(?P<s>\S+)`),
			authModeKey,
			privateKeyBlock,
		},
	},
	"h3c-comware": {
		Model: "h3c-comware",
		// Comware may send a NUL before and a BEL after the prompt; the
		// terminal layer drops both
		Prompt:   re(`^(?:<[\w.:/-]+>|\[[\w.:/-]+\])\s?$`),
		Pager:    re(`\s*---- More ----\s*$`),
		PagerKey: " ",
		Errors:   []*regexp.Regexp{re(`(?m)^% (?:Unrecognized|Incomplete|Too many|Wrong parameter)`)},
		Escalate: &Escalate{When: re(`^<`), Command: "super", PasswordPrompt: re(`^\s?[Pp]assword:\s?$`),
			SamePrompt: true, Refused: re(`(?im)^\s*(?:% )?(?:password is incorrect|.*denied|.*failed|authentication fail)`)},
		OnOpen: []string{"screen-length disable"},
		// Comware shows secrets as ciphertext that is stable across reads
		ShowCommand:    "display current-configuration",
		StartupCommand: "display saved-configuration",
		Save:           &Save{Command: "save force", Success: re(`(?i)saved the current configuration|successfully`)},
		Complete:       endsWith("return"),
		EndMarker:      `a last line "return"`,
		Volatile: []*regexp.Regexp{
			re(`^ ?version \d+\.\d+, (?:Release|ESS) \S+`),
			re(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`),
		},
		Secrets: []*regexp.Regexp{
			re(`(?m)^\s*snmp-agent community (?:read|write) (?:simple |cipher )?(?P<s>\S+)`),
			re(`(?m)\bpassword (?:hash|cipher|simple) (?P<s>\S+)`),
			re(`(?m)\bsuper password(?: role \S+)? (?:hash|cipher|simple) (?P<s>\S+)`),
			re(`(?m)\bkey (?:authentication |accounting |authorization )?(?:cipher|simple) (?P<s>\S+)`),
			re(`(?m)\bpre-shared-key (?:cipher|simple) (?P<s>\S+)`),
			re(`(?m)cipher authentication-mode \S+ (?P<s>\S+)(?: privacy-mode \S+ (?P<s>\S+))?`),
			authModeKey,
			privateKeyBlock,
		},
	},
}

// Models lists the supported models, sorted.
func Models() []string {
	out := make([]string, 0, len(Drivers))
	for m := range Drivers {
		out = append(out, m)
	}
	sortStrings(out)
	return out
}
