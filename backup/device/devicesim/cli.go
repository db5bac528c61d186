package devicesim

import (
	"bufio"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
)

// dialect is how one vendor's CLI looks and answers.
type dialect struct {
	version   string // the SSH server version string
	banner    string // sent before the first prompt
	exec      bool   // the config is read on an exec channel
	crlf      string // line ending of output ("\r\n" on every CLI here)
	pagingOff string
	show      string
	startup   string
	// prompt renders the prompt; priv is false before enable/super.
	prompt func(host string, priv bool) string
	// pager is shown every pageLines lines while paging is on; erase is
	// what the device sends after the key to wipe it.
	pager, erase string
	errorText    func(cmd string) string
	escalate     string // "enable" or "super"
	// save runs the save dialog; it returns the lines to print.
	save func(s *shellState) error
	// extra answers other commands; ok false means unknown.
	extra func(s *shellState, cmd string) (string, bool)
	// change applies a real configuration change to a config template.
	change func(tpl, word string) string
}

const pageLines = 22

// insertAfter adds line after the first line starting with prefix.
func insertAfter(tpl, prefix, line string) string {
	i := strings.Index(tpl, "\n"+prefix)
	if i < 0 {
		return tpl + line + "\n"
	}
	j := strings.IndexByte(tpl[i+1:], '\n')
	at := i + 1 + j + 1
	return tpl[:at] + line + "\n" + tpl[at:]
}

var dialects = map[string]*dialect{
	"cisco-ios": {
		version: "SSH-2.0-Cisco-1.25",
		banner:  "\r\nAuthorized access only. Disconnect IMMEDIATELY if you are not an authorized user!\r\n\r\n",
		crlf:    "\r\n", pagingOff: "terminal length 0", show: "show running-config", startup: "show startup-config",
		prompt: func(h string, priv bool) string { return h + map[bool]string{true: "#", false: ">"}[priv] },
		pager:  " --More-- ", erase: strings.Repeat("\b", 10) + strings.Repeat(" ", 10) + strings.Repeat("\b", 10),
		errorText: func(cmd string) string {
			return "                    ^\r\n% Invalid input detected at '^' marker.\r\n\r\n"
		},
		escalate: "enable",
		save: func(s *shellState) error {
			return s.o.write("Building configuration...\r\n[OK]\r\n")
		},
		extra: func(s *shellState, cmd string) (string, bool) {
			if cmd == "terminal width 0" {
				return "", true
			}
			return "", false
		},
		change: func(tpl, word string) string {
			return strings.Replace(tpl, " description office LAN\n", " description office LAN "+word+"\n", 1)
		},
	},
	"arista-eos": {
		version: "SSH-2.0-OpenSSH_8.4",
		banner:  "Last login: Sat Dec  5 09:58:12 2026 from 192.0.2.200\r\n",
		crlf:    "\r\n", pagingOff: "terminal length 0", show: "show running-config", startup: "show startup-config",
		prompt: func(h string, priv bool) string { return h + map[bool]string{true: "#", false: ">"}[priv] },
		pager:  " --More-- ", erase: "\r          \r",
		errorText: func(cmd string) string { return "% Invalid input\r\n" },
		escalate:  "enable",
		save: func(s *shellState) error {
			return s.o.write("Copy completed successfully.\r\n")
		},
		extra: func(s *shellState, cmd string) (string, bool) {
			if cmd == "terminal width 32767" {
				return "Width set to 32767 columns.\r\n", true
			}
			return "", false
		},
		change: func(tpl, word string) string {
			return strings.Replace(tpl, "   name office\n", "   name office-"+word+"\n", 1)
		},
	},
	"junos": {
		version: "SSH-2.0-OpenSSH_7.5", exec: true, crlf: "\n",
		show:      "show configuration | display omit | no-more",
		errorText: func(cmd string) string { return "error: syntax error: " + cmd + "\n" },
		change: func(tpl, word string) string {
			return strings.Replace(tpl, "    ge-0/0/0 {\n", "    ge-0/0/0 {\n        description \""+word+"\";\n", 1)
		},
	},
	"routeros": {
		version: "SSH-2.0-ROSSSH", exec: true, crlf: "\r\n",
		show:      "/export show-sensitive",
		errorText: func(cmd string) string { return "bad command name " + cmd + "\r\n" },
		change: func(tpl, word string) string {
			return insertAfter(tpl, "add name=bridge1", "add name=bridge-"+word)
		},
	},
	"fortios": {
		version: "SSH-2.0-ElQXHcvPWR",
		crlf:    "\r\n", show: "show | grep .",
		prompt: func(h string, priv bool) string { return h + " # " },
		pager:  "--More-- ", erase: "\r         \r",
		errorText: func(cmd string) string { return "Command fail. Return code -61\r\n" },
		save: func(s *shellState) error {
			return s.o.write("")
		},
		extra: func(s *shellState, cmd string) (string, bool) {
			switch cmd {
			case "get system global | grep cfg-save":
				return "cfg-save            : manual\r\n", true
			}
			return "", false
		},
		change: func(tpl, word string) string {
			return strings.Replace(tpl, "    set alias \"FortiGate-91G\"\n", "    set alias \"FortiGate-91G-"+word+"\"\n", 1)
		},
	},
	"huawei-vrp": {
		version: "SSH-2.0-HUAWEI-1.5",
		banner: "\r\nInfo: The max number of VTY users is 10, and the number\r\n      of current VTY users on line is 1.\r\n" +
			"      The current login time is 2026-12-05 10:00:00.\r\n",
		crlf: "\r\n", pagingOff: "screen-length 0 temporary", show: "display current-configuration", startup: "display saved-configuration",
		prompt: func(h string, priv bool) string { return "<" + h + ">" },
		pager:  "  ---- More ----", erase: "\x1b[16D                \x1b[16D",
		errorText: func(cmd string) string {
			return "              ^\r\nError: Unrecognized command found at '^' position.\r\n"
		},
		save: func(s *shellState) error {
			if err := s.o.write("The current configuration will be written to the device.\r\nAre you sure to continue?[Y/N]:"); err != nil {
				return err
			}
			ans, err := s.readLine(true)
			if err != nil {
				return err
			}
			if !strings.EqualFold(ans, "y") {
				return s.o.write("\r\nInfo: Save canceled.\r\n")
			}
			return s.o.write("\r\nNow saving the current configuration to the slot 0.\r\nInfo: Save the configuration successfully.\r\n")
		},
		extra: func(s *shellState, cmd string) (string, bool) {
			if cmd == "screen-length 0 temporary" {
				return "Info: The configuration takes effect on the current user terminal interface only.\r\n", true
			}
			return "", false
		},
		change: func(tpl, word string) string {
			return insertAfter(tpl, "interface GigabitEthernet0/0/2", " description "+word)
		},
	},
	"h3c-comware": {
		version: "SSH-2.0-Comware-7.1.064",
		banner: "******************************************************************************\r\n" +
			"* Copyright (c) 2004-2023 New H3C Technologies Co., Ltd. All rights reserved.*\r\n" +
			"* Without the owner's prior written consent,                                 *\r\n" +
			"* no decompiling or reverse-engineering shall be allowed.                    *\r\n" +
			"******************************************************************************\r\n\r\n",
		crlf: "\r\n", pagingOff: "screen-length disable", show: "display current-configuration", startup: "display saved-configuration",
		// a NUL before and a BEL after, as some Comware releases send
		prompt: func(h string, priv bool) string { return "\x00<" + h + ">\x07" },
		pager:  "  ---- More ----", erase: "\x1b[16D                \x1b[16D",
		errorText: func(cmd string) string { return "            ^\r\n % Unrecognized command found at '^' position.\r\n" },
		escalate:  "super",
		save: func(s *shellState) error {
			return s.o.write("Validating file. Please wait...\r\nSaved the current configuration to mainboard device successfully.\r\n")
		},
		change: func(tpl, word string) string {
			return insertAfter(tpl, "interface GigabitEthernet1/0/2", " description "+word)
		},
	},
}

// shellState is one interactive CLI session.
type shellState struct {
	afterCR bool // the last line ended with '\r': a '\n' right after it is part of it
	d       *Device
	o       out
	r       *bufio.Reader
	priv    bool
	paging  bool
}

// readLine reads one typed line, echoing it unless secret.
func (s *shellState) readLine(secret bool) (string, error) {
	var b strings.Builder
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' && s.afterCR {
			s.afterCR = false
			continue
		}
		s.afterCR = c == '\r'
		switch c {
		case '\r', '\n':
			if err := s.o.write("\r\n"); err != nil {
				return "", err
			}
			return b.String(), nil
		case 0x7f, '\b':
			// no editing in the simulator
		default:
			b.WriteByte(c)
			if !secret {
				if err := s.o.write(string(c)); err != nil {
					return "", err
				}
			}
		}
	}
}

func (d *Device) shell(nc net.Conn, ch ssh.Channel, user string) {
	dl := d.dialect
	if d.Model == "junos" {
		d.junosShell(nc, ch, user)
		return
	}
	if dl.exec {
		// RouterOS's interactive CLI (repainting its prompt as you type)
		// is not simulated; holiday uses the exec channel
		_, _ = ch.Write([]byte("interactive CLI not simulated; use exec\r\n"))
		return
	}
	s := &shellState{d: d, o: out{w: ch, split: d.Faults.Split}, r: bufio.NewReader(ch),
		priv: d.EnablePassword == "", paging: true}
	if err := s.o.write(dl.banner); err != nil {
		return
	}
	for {
		if err := s.o.write(dl.prompt(d.Hostname, s.priv)); err != nil {
			return
		}
		cmd, err := s.readLine(false)
		if err != nil {
			return
		}
		cmd = strings.TrimSpace(cmd)
		switch {
		case cmd == "":
		case cmd == "exit" || cmd == "quit":
			return
		case cmd == dl.pagingOff && dl.pagingOff != "":
			if d.Faults.RefusePagingOff {
				_ = s.o.write(dl.errorText(cmd))
				continue
			}
			s.paging = false
			if dl.extra == nil {
				continue
			}
			if out, ok := dl.extra(s, cmd); ok {
				_ = s.o.write(out)
			}
		case cmd == dl.escalate && dl.escalate != "":
			if d.EnablePassword == "" {
				s.priv = true
				continue
			}
			_ = s.o.write("Password: ")
			pw, err := s.readLine(true)
			if err != nil {
				return
			}
			if pw == d.EnablePassword {
				s.priv = true
			} else if dl.escalate == "super" {
				_ = s.o.write("Password is incorrect.\r\n")
			} else {
				_ = s.o.write("% Access denied\r\n\r\n")
			}
		case !s.priv:
			_ = s.o.write(dl.errorText(cmd))
		case cmd == dl.show && d.Model == "fortios":
			// a pipe ends FortiOS's pager: the output is never paged
			if !d.writeConfig(nc, s.o, toCRLF(d.running(), dl.crlf)) {
				return
			}
		case cmd == dl.show || (cmd == "show" && d.Model == "fortios"):
			if !s.page(nc, toCRLF(d.running(), dl.crlf)) {
				return
			}
		case cmd == dl.startup && dl.startup != "":
			d.mu.Lock()
			st := d.startup
			d.mu.Unlock()
			if dl.startup == "show startup-config" && d.Model == "cisco-ios" {
				st = strings.Replace(st, "Building configuration...\n\nCurrent configuration : 2817 bytes\n", "Using 2817 out of 262144 bytes\n", 1)
			}
			if !s.page(nc, toCRLF(st, dl.crlf)) {
				return
			}
		case d.isSave(cmd):
			if err := dl.save(s); err != nil {
				return
			}
			d.mu.Lock()
			if !d.Faults.SaveIgnored {
				d.startup = d.render(d.template, 0)
				d.saves++
			}
			d.mu.Unlock()
		default:
			if dl.extra != nil {
				if out, ok := dl.extra(s, cmd); ok {
					_ = s.o.write(out)
					continue
				}
			}
			_ = s.o.write(dl.errorText(cmd))
		}
	}
}

func (d *Device) isSave(cmd string) bool {
	switch d.Model {
	case "cisco-ios", "arista-eos":
		return cmd == "write memory" || cmd == "copy running-config startup-config"
	case "huawei-vrp":
		return cmd == "save"
	case "h3c-comware":
		return cmd == "save force"
	case "fortios":
		return cmd == "execute cfg save"
	}
	return false
}

// page writes output, stopping at the pager every pageLines lines while
// paging is on; a space shows the next page, q ends the output. It
// returns false when a fault ended the session.
func (s *shellState) page(nc net.Conn, text string) bool {
	dl := s.d.dialect
	if f := s.d.Faults; !s.paging || f.HangAfter > 0 || f.CutAfter > 0 {
		return s.d.writeConfig(nc, s.o, text)
	}
	lines := strings.SplitAfter(text, "\n")
	for i := 0; i < len(lines); i += pageLines {
		chunk := strings.Join(lines[i:min(i+pageLines, len(lines))], "")
		if err := s.o.write(chunk); err != nil {
			return false
		}
		if i+pageLines >= len(lines) {
			break
		}
		if err := s.o.write(dl.pager); err != nil {
			return false
		}
		c, err := s.r.ReadByte()
		if err != nil {
			return false
		}
		if err := s.o.write(dl.erase); err != nil {
			return false
		}
		if c == 'q' {
			return s.o.write("\r\n") == nil
		}
	}
	return true
}

func init() {
	for name, dl := range dialects {
		if dl.errorText == nil {
			panic(fmt.Sprintf("devicesim: dialect %s has no error text", name))
		}
	}
}

// junosShell is Junos's operational-mode CLI, for tools that use it
// rather than the exec channel (RANCID's jlogin, in the benchmark):
// "user@host> ", the `set cli` settings, the show command.
func (d *Device) junosShell(nc net.Conn, ch ssh.Channel, user string) {
	s := &shellState{d: d, o: out{w: ch, split: d.Faults.Split}, r: bufio.NewReader(ch), priv: true}
	prompt := "\r\n" + user + "@" + d.Hostname + "> "
	if err := s.o.write("--- JUNOS 22.4R3-S2.11 built 2024-05-10 20:45:39 UTC\r\n"); err != nil {
		return
	}
	for {
		if err := s.o.write(prompt); err != nil {
			return
		}
		cmd, err := s.readLine(false)
		if err != nil {
			return
		}
		switch cmd = strings.TrimSpace(cmd); cmd {
		case "":
		case "exit", "quit":
			return
		case "set cli screen-length 0":
			_ = s.o.write("Screen length set to 0\r\n")
		case "set cli screen-width 0":
			_ = s.o.write("Screen width set to 0\r\n")
		case "set cli complete-on-space off":
			_ = s.o.write("Disabling complete-on-space\r\n")
		case d.dialect.show, "show configuration":
			if !d.writeConfig(nc, s.o, toCRLF(d.running(), "\r\n")) {
				return
			}
		default:
			_ = s.o.write("                    ^\r\nunknown command.\r\n")
		}
	}
}
