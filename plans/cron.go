package plans

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// checkCron returns "" if spec parses with robfig/cron's standard parser
// rules, or a message saying what is wrong. It is hand-written so the
// message can name the field.
func checkCron(spec string) string {
	s := strings.TrimSpace(spec)
	if s == "" {
		return "empty cron spec"
	}
	if strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=") {
		_, rest, _ := strings.Cut(s, "=")
		zone, tail, _ := strings.Cut(rest, " ")
		if zone == "" {
			return fmt.Sprintf("%q: CRON_TZ= needs a zone like Asia/Shanghai", spec)
		}
		if _, err := time.LoadLocation(zone); err != nil {
			return fmt.Sprintf("%q: unknown time zone %q (want a zone like Asia/Shanghai or UTC)", spec, zone)
		}
		s = strings.TrimSpace(tail)
		if s == "" {
			return fmt.Sprintf("%q: nothing after the time zone", spec)
		}
	}
	if strings.HasPrefix(s, "@") {
		if rest, ok := strings.CutPrefix(s, "@every "); ok {
			d, err := time.ParseDuration(strings.TrimSpace(rest))
			if err != nil || d < time.Second {
				return fmt.Sprintf("%q: @every needs a duration of at least 1s, like @every 1h", spec)
			}
			return ""
		}
		switch s {
		case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
			return ""
		}
		return fmt.Sprintf("%q: unknown descriptor; want @hourly, @daily, @weekly, @monthly, @yearly or @every DURATION", spec)
	}
	fields := strings.Fields(s)
	if len(fields) != 5 {
		return fmt.Sprintf("%q has %d fields; want 5 (minute hour day-of-month month day-of-week)", spec, len(fields))
	}
	type bound struct {
		name     string
		min, max int
		names    []string
	}
	bounds := []bound{
		{"minute", 0, 59, nil},
		{"hour", 0, 23, nil},
		{"day-of-month", 1, 31, nil},
		{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
		{"day-of-week", 0, 6, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
	}
	for i, f := range fields {
		b := bounds[i]
		if msg := checkCronField(f, b.min, b.max, b.names, i == 2 || i == 4); msg != "" {
			return fmt.Sprintf("%q: %s field %q: %s", spec, b.name, f, msg)
		}
	}
	return ""
}

func checkCronField(f string, min, max int, names []string, question bool) string {
	value := func(v string) (int, string) {
		for i, n := range names {
			if strings.EqualFold(v, n) {
				return min + i, ""
			}
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Sprintf("%q is not a number", v)
		}
		if n < min || n > max {
			return 0, fmt.Sprintf("%d is out of range %d-%d", n, min, max)
		}
		return n, ""
	}
	for _, part := range strings.Split(f, ",") {
		rng, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n <= 0 {
				return fmt.Sprintf("step %q is not a positive number", step)
			}
		}
		switch {
		case rng == "*" || (question && rng == "?"):
			continue
		case rng == "":
			return "empty list item"
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, msg := value(lo)
		if msg != "" {
			return msg
		}
		if isRange {
			b, msg := value(hi)
			if msg != "" {
				return msg
			}
			if b < a {
				return fmt.Sprintf("range %s ends before it starts", rng)
			}
		}
	}
	return ""
}
