package incident

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentproto"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/plans"
)

// Custody is the chain-of-custody record stored beside the items: who
// acquired the evidence, when, with which agent, each step's time, and
// every item's SHA-256 as the agent read it and as the control node
// received it.
type Custody struct {
	Host        string                 `json:"host"`
	Operator    string                 `json:"operator"`     // user@control-node
	ControlNode string                 `json:"control_node"` // hostname
	Holiday     string                 `json:"holiday"`      // version
	AgentSHA256 string                 `json:"agent_sha256"` // the fresh agent's build, from its hello
	AgentPath   string                 `json:"agent_path"`
	Since       time.Time              `json:"since"`
	Requested   time.Time              `json:"requested"`
	Received    time.Time              `json:"received"`
	Acquisition *integrity.Acquisition `json:"acquisition"`
	Items       []integrity.AcqItem    `json:"items"` // as received: hashed on the control node
}

// EvidenceResult is one host's evidence run.
type EvidenceResult struct {
	Host     string        `json:"host"`
	Snapshot string        `json:"snapshot,omitempty"`
	Items    int           `json:"items"`
	Bytes    int64         `json:"bytes"`
	Took     time.Duration `json:"took"`
	Custody  *Custody      `json:"custody,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// Evidence acquires a host's evidence through a fresh agent and stores it
// as a kind:evidence snapshot holding evidence.tar (the items,
// MANIFEST.sha256 and custody.json). since starts the window; zero means
// the host's newest baseline's time. r must be open with its index loaded
// and a shared lock held.
func Evidence(ctx context.Context, p *plans.Plan, h *plans.Host, r *repo.Repository, since time.Time, o Options) EvidenceResult {
	start := time.Now()
	res := EvidenceResult{Host: h.Name}
	fail := func(err error) EvidenceResult {
		res.Error = err.Error()
		res.Took = time.Since(start)
		return res
	}
	if since.IsZero() {
		if base, _, err := LatestBaseline(ctx, r, h.Name); err == nil {
			since = base.Taken
		} else {
			since = time.Now().Add(-14 * 24 * time.Hour)
		}
	}
	ag, done, err := connectFresh(ctx, p, h, o)
	if err != nil {
		return fail(err)
	}
	defer done()
	cu := &Custody{Host: h.Name, Holiday: o.Version, AgentSHA256: ag.Info().AgentBuild, AgentPath: ag.Info().Path,
		Since: since.UTC(), Requested: time.Now().UTC()}
	cu.ControlNode, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		cu.Operator = u.Username + "@" + cu.ControlNode
	}

	spool, err := os.CreateTemp("", "holiday-evidence-")
	if err != nil {
		return fail(err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	s, err := ag.Start(ctx, integrity.OpEvidence, integrity.EvidenceArgs{Since: since, WebRoots: h.WebRoots})
	if err != nil {
		return fail(err)
	}
	defer s.Close()
	for {
		t, b, err := s.ReadFrame()
		if err != nil {
			return fail(fmt.Errorf("evidence stream: %w", err))
		}
		if t == agentproto.FrameEOF {
			break
		}
		if t != agentproto.FrameData {
			return fail(fmt.Errorf("evidence stream: unexpected %s frame", t))
		}
		if _, err := spool.Write(b); err != nil {
			return fail(fmt.Errorf("spool the evidence: %w", err))
		}
	}
	var acq integrity.Acquisition
	if err := s.Result(&acq); err != nil {
		return fail(err)
	}
	cu.Received, cu.Acquisition = time.Now().UTC(), &acq
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return fail(err)
	}

	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(repack(spool, cu, pw)) }()
	sn, err := save(ctx, r, h.Name, pr, EvidenceFile, KindEvidence, o.Store)
	pr.CloseWithError(err)
	if err != nil {
		return fail(err)
	}
	res.Snapshot, res.Custody, res.Items = sn.ID.String(), cu, len(cu.Items)
	for _, it := range cu.Items {
		res.Bytes += it.Size
	}
	res.Took = time.Since(start)
	return res
}

// repack copies the agent's tar into the stored one, hashing every item
// as it passes, checks the hashes against the agent's, and appends
// MANIFEST.sha256 and custody.json.
func repack(in io.Reader, cu *Custody, out io.Writer) error {
	agentSums := map[string]string{}
	for _, it := range cu.Acquisition.Items {
		agentSums[it.Name] = it.SHA256
	}
	tr := tar.NewReader(in)
	tw := tar.NewWriter(out)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("the agent's evidence stream: %w", err)
		}
		h := sha256.New()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(tw, io.TeeReader(tr, h))
		if err != nil {
			return err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if want := agentSums[hdr.Name]; want != sum {
			return fmt.Errorf("evidence item %s: SHA-256 %s on arrival, the agent said %s", hdr.Name, sum, want)
		}
		cu.Items = append(cu.Items, integrity.AcqItem{Name: hdr.Name, Size: n, SHA256: sum})
	}
	if len(cu.Items) != len(cu.Acquisition.Items) {
		return fmt.Errorf("evidence: %d items arrived, the agent listed %d", len(cu.Items), len(cu.Acquisition.Items))
	}
	var man bytes.Buffer
	items := append([]integrity.AcqItem(nil), cu.Items...)
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	for _, it := range items {
		fmt.Fprintf(&man, "%s  %s\n", it.SHA256, it.Name) // sha256sum -c reads this
	}
	cj, err := json.MarshalIndent(cu, "", "  ")
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		b    []byte
	}{{"MANIFEST.sha256", man.Bytes()}, {"custody.json", cj}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.b)), ModTime: cu.Received, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.b); err != nil {
			return err
		}
	}
	return tw.Close()
}
