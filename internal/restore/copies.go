package restore

import (
	"context"
	"io"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/remote"
)

// CopiesOf lists a's complete copies, in the remote's upstream order.
func CopiesOf(ups []*remote.Upstream, a *catalog.Archive) []Copy {
	var out []Copy
	for _, i := range a.CompleteCopies() {
		out = append(out, CopyOn(ups[i], a.Key))
	}
	return out
}

// CopyOn is the copy of the data object key on u.
func CopyOn(u *remote.Upstream, key string) Copy {
	return Copy{Upstream: u.Name, Open: func(ctx context.Context) (io.ReadCloser, error) {
		obj, err := u.Fs.NewObject(ctx, key)
		if err != nil {
			return nil, err
		}
		return obj.Open(ctx)
	}}
}
