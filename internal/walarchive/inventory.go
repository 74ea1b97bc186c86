package walarchive

import (
	"context"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/walname"
	"github.com/rclone/rclone/fs"
)

// DefaultSegmentSize is wal_segment_size unless a base backup says other.
const DefaultSegmentSize = 16 << 20

// Inventory is one cluster's archived WAL, per upstream.
type Inventory struct {
	Cluster   walname.Cluster
	SegSize   int64
	Upstreams []UpstreamWAL
	// Union is what wal-fetch can reach: the files complete on any
	// upstream, with their runs and gaps.
	Union UpstreamWAL
	// Newest is the newest complete segment anywhere and when it was
	// stored (the listing's time: informative, not trusted).
	Newest     string
	NewestTime time.Time
}

// UpstreamWAL is one upstream's share.
type UpstreamWAL struct {
	Name       string
	Err        error // the upstream could not be listed
	Files      []walname.File
	Histories  []string
	Runs, Gaps []walname.Range
	Incomplete int // data without a manifest: a push cut short or running
}

type listed struct {
	cluster walname.Cluster
	file    walname.File
	data    bool
	obj     fs.Object // the data object, for its time (only the newest's is read)
}

// Scan lists <prefix>/wal on every upstream and groups what it finds by
// cluster. segSize gives each cluster's segment size (from its base
// backups); 0 means DefaultSegmentSize.
func Scan(ctx context.Context, ups []*remote.Upstream, prefix string, segSize func(walname.Cluster) int64) []*Inventory {
	per := make([][]listed, len(ups))
	errs := make([]error, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		if u.Err != nil {
			errs[i] = u.Err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			objs, err := catalog.ListObjects(ctx, u, path.Join(prefix, walname.Dir))
			errs[i] = err
			for _, o := range objs {
				if l, ok := parseWALKey(prefix, o.Key); ok {
					if l.data {
						l.obj = o.Handle
					}
					per[i] = append(per[i], l)
				}
			}
		}()
	}
	wg.Wait()
	byCluster := map[walname.Cluster]*Inventory{}
	for i := range ups {
		for _, l := range per[i] {
			inv := byCluster[l.cluster]
			if inv == nil {
				inv = &Inventory{Cluster: l.cluster, SegSize: DefaultSegmentSize, Upstreams: make([]UpstreamWAL, len(ups))}
				if n := segSize(l.cluster); n > 0 {
					inv.SegSize = n
				}
				for j, v := range ups {
					inv.Upstreams[j] = UpstreamWAL{Name: v.Name, Err: errs[j]}
				}
				byCluster[l.cluster] = inv
			}
		}
	}
	for _, inv := range byCluster {
		// Only the newest segment's time is read: on S3 each costs a HEAD.
		var newestObj fs.Object
		union := map[string]walname.File{}
		for i := range ups {
			complete := completeFiles(per[i], inv.Cluster)
			uw := &inv.Upstreams[i]
			for name, f := range complete.files {
				uw.Files = append(uw.Files, f)
				union[name] = f
				if f.Kind == walname.Segment && name > inv.Newest {
					inv.Newest, newestObj = name, complete.objs[name]
				}
			}
			uw.Incomplete = complete.incomplete
			finish(uw, inv.SegSize)
		}
		if newestObj != nil {
			inv.NewestTime = newestObj.ModTime(ctx)
		}
		inv.Union.Name = "any upstream"
		for _, f := range union {
			inv.Union.Files = append(inv.Union.Files, f)
		}
		finish(&inv.Union, inv.SegSize)
	}
	out := make([]*Inventory, 0, len(byCluster))
	for _, inv := range byCluster {
		out = append(out, inv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Cluster.SystemID < out[j].Cluster.SystemID })
	return out
}

type completeSet struct {
	files      map[string]walname.File
	objs       map[string]fs.Object
	incomplete int
}

// completeFiles keeps the files of c that have both data and manifest.
func completeFiles(ls []listed, c walname.Cluster) completeSet {
	data, man := map[string]listed{}, map[string]bool{}
	for _, l := range ls {
		if l.cluster != c {
			continue
		}
		if l.data {
			data[l.file.Name] = l
		} else {
			man[l.file.Name] = true
		}
	}
	s := completeSet{files: map[string]walname.File{}, objs: map[string]fs.Object{}}
	for name, l := range data {
		if man[name] {
			s.files[name], s.objs[name] = l.file, l.obj
		} else {
			s.incomplete++
		}
	}
	return s
}

func finish(uw *UpstreamWAL, segSize int64) {
	sort.Slice(uw.Files, func(i, j int) bool { return uw.Files[i].Name < uw.Files[j].Name })
	for _, f := range uw.Files {
		if f.Kind == walname.History {
			uw.Histories = append(uw.Histories, f.Name)
		}
	}
	uw.Runs, uw.Gaps = walname.Ranges(uw.Files, segSize)
}

// parseWALKey reads <prefix>/wal/<sysid>/<major>/<file>.age[.manifest.json].
func parseWALKey(prefix, key string) (listed, bool) {
	rel := key
	if prefix != "" {
		var ok bool
		if rel, ok = strings.CutPrefix(key, prefix+"/"); !ok {
			return listed{}, false
		}
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 4 || parts[0] != walname.Dir {
		return listed{}, false
	}
	id, err1 := strconv.ParseUint(parts[1], 10, 64)
	major, err2 := strconv.Atoi(parts[2])
	c := walname.Cluster{SystemID: id, Major: major}
	if err1 != nil || err2 != nil || c.Validate() != nil || c.Folder(prefix) != path.Dir(key) {
		return listed{}, false
	}
	name, isManifest := strings.CutSuffix(parts[3], naming.ManifestSuffix)
	name, ok := strings.CutSuffix(name, walname.Suffix)
	if !ok {
		return listed{}, false
	}
	f, err := walname.Parse(name)
	if err != nil {
		return listed{}, false
	}
	return listed{cluster: c, file: f, data: !isManifest}, true
}
