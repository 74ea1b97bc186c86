package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// reference chooses the archive's manifest among its copies' own, once
// each copy's manifest (and, with trust, signature) was read:
//   - with trust checked, only a copy whose own signature is valid and by a
//     trusted key may supply it; without one the archive is TrustUntrusted
//     (and the best manifest is kept for display only);
//   - among the candidates, the body held by most copies whose data has the
//     size it says wins, then the body held by most copies, then the first
//     upstream's: a single edited or damaged manifest is outvoted by the
//     copies that agree with their data, and is named as differing.
//
// upstreams names the catalog's upstreams, for the reasons it records.
func (a *Archive) reference(upstreams []string, checked bool) {
	type vote struct {
		first         int // copy index holding it first
		whole, copies int
	}
	votes := map[string]*vote{}
	var order []string
	var readErrs, distrust []error
	for i, c := range a.Copies {
		if c.Err != nil {
			readErrs = append(readErrs, fmt.Errorf("%s: %w", upstreams[i], c.Err))
		}
		if c.Manifest == nil {
			continue
		}
		if checked && !c.Trusted {
			distrust = append(distrust, fmt.Errorf("%s: %w", upstreams[i], c.TrustErr))
		}
		k := string(c.Body)
		v := votes[k]
		if v == nil {
			v = &vote{first: i}
			votes[k] = v
			order = append(order, k)
		}
		v.copies++
		if c.HasData && c.DataSize == c.Manifest.Ciphertext.Size {
			v.whole++
		}
	}
	best, bestTrusted := -1, -1
	better := func(i, j int) bool { // is the body of copy i better than that of copy j?
		if j < 0 {
			return true
		}
		vi, vj := votes[string(a.Copies[i].Body)], votes[string(a.Copies[j].Body)]
		if vi.whole != vj.whole {
			return vi.whole > vj.whole
		}
		return vi.copies > vj.copies
	}
	for _, k := range order {
		i := votes[k].first
		if better(i, best) {
			best = i
		}
	}
	for i, c := range a.Copies {
		if c.Manifest != nil && c.Trusted && (bestTrusted < 0 || !bytes.Equal(c.Body, a.Copies[bestTrusted].Body) && better(i, bestTrusted)) {
			bestTrusted = i
		}
	}
	switch {
	case best < 0:
		a.ManifestErr = oneLine(readErrs, "no manifest could be read")
		if checked {
			a.Trust, a.TrustErr = TrustUntrusted, a.ManifestErr
		}
		return
	case checked && bestTrusted >= 0:
		best = bestTrusted
		a.Trust, a.Signer = TrustSigned, a.Copies[best].signer
	case checked:
		a.Trust, a.TrustErr = TrustUntrusted, oneLine(distrust, "no trusted signature")
	}
	c := a.Copies[best]
	a.Manifest, a.Body, a.Sig = c.Manifest, c.Body, c.Sig
}

// Disagreement says how copy i's own manifest differs from the archive's,
// naming the upstreams that hold the archive's: "dump.sha256 ab12... here,
// cd34... on minio-b, local". "" when it does not differ.
func (a *Archive) Disagreement(i int, upstreams []string) string {
	own := a.Copies[i].Manifest
	if own == nil || a.Manifest == nil || a.State(i) != Differs {
		return ""
	}
	var holders []string
	for j, c := range a.Copies {
		if j != i && c.Body != nil && bytes.Equal(c.Body, a.Body) {
			holders = append(holders, upstreams[j])
		}
	}
	where := "the archive's"
	if len(holders) > 0 {
		where = "on " + strings.Join(holders, ", ")
	}
	m := a.Manifest
	for _, d := range []struct{ field, here, there string }{
		{"ciphertext.size", fmt.Sprint(own.Ciphertext.Size), fmt.Sprint(m.Ciphertext.Size)},
		{"ciphertext.sha256", own.Ciphertext.SHA256, m.Ciphertext.SHA256},
		{"ciphertext.header_sha256", own.Ciphertext.HeaderSHA256, m.Ciphertext.HeaderSHA256},
		{"dump.size", fmt.Sprint(own.Dump.Size), fmt.Sprint(m.Dump.Size)},
		{"dump.sha256", own.Dump.SHA256, m.Dump.SHA256},
	} {
		if d.here != d.there {
			return fmt.Sprintf("its manifest says %s %s, %s says %s", d.field, d.here, where, d.there)
		}
	}
	return "its manifest's bytes differ from the manifest " + where
}

// oneLine joins per-upstream reasons on one line: they end up in log
// lines, which journalctl -u shows one message line each.
func oneLine(errs []error, none string) error {
	if len(errs) == 0 {
		return errors.New(none)
	}
	parts := make([]string, len(errs))
	for i, err := range errs {
		parts[i] = err.Error()
	}
	return errors.New(strings.Join(parts, "; "))
}
