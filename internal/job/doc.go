// Package job runs pgarchive's compound jobs: the nightly archive run
// (retry the backlog, archive today's dump with a backlog copy, keep or drop
// that copy, heal) and the summaries, metrics and outcomes of backlog
// retries and heals that the archive, retry and heal commands share.
//
// Each step itself lives in its own package (archive, backlog, heal,
// catalog, metrics); this package only orders them and decides which
// failure a run reports, so that order can be read and tested in one place.
// It takes typed options and a logger and never reads flags, environment
// or files of its own.
package job
