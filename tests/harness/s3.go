package harness

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// s3Client is a minimal AWS Signature V4 client for the few calls the tests
// need. It is hand-written instead of using rclone's S3 backend on purpose:
// it touches no rclone global state (config, Fs cache, flags) that product
// code shares, it writes exactly the bytes given (no mtime/md5 metadata that
// would mask a fault), and it keeps this package free of heavy imports.
type s3Client struct {
	endpoint  string // http://127.0.0.1:PORT
	accessKey string
	secretKey string
	region    string
	http      *http.Client
}

// ObjectInfo is one entry of a bucket listing.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // without quotes; "<md5>-<parts>" for multipart uploads
	LastModified time.Time
}

// s3Escape percent-encodes like SigV4 wants: everything but unreserved
// characters, optionally keeping '/' (paths) or not (query values).
func s3Escape(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', keepSlash && c == '/':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// do sends one signed request with path-style addressing and returns the
// response (body fully read) or an error carrying the S3 error body.
func (c *s3Client) do(ctx context.Context, method, bucket, key string, query url.Values, body []byte, hdr http.Header) (*http.Response, []byte, error) {
	path := "/" + s3Escape(bucket, false)
	if key != "" {
		path += "/" + s3Escape(key, true)
	}
	keys := make([]string, 0, len(query))
	for k := range query {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var qs []string
	for _, k := range keys {
		for _, v := range query[k] {
			qs = append(qs, s3Escape(k, false)+"="+s3Escape(v, false))
		}
	}
	canonicalQuery := strings.Join(qs, "&")
	u := c.endpoint + path
	if canonicalQuery != "" {
		u += "?" + canonicalQuery
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = int64(len(body))
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	now := time.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	day := now.Format("20060102")
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)

	signed := []string{"host", "x-amz-content-sha256", "x-amz-date"}
	canonicalHeaders := "host:" + req.URL.Host + "\n" +
		"x-amz-content-sha256:" + payloadHash + "\n" +
		"x-amz-date:" + amzDate + "\n"
	canonicalRequest := strings.Join([]string{method, path, canonicalQuery, canonicalHeaders,
		strings.Join(signed, ";"), payloadHash}, "\n")
	scope := day + "/" + c.region + "/s3/aws4_request"
	crHash := sha256.Sum256([]byte(canonicalRequest))
	stringToSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	k := hmacSHA256([]byte("AWS4"+c.secretKey), day)
	k = hmacSHA256(k, c.region)
	k = hmacSHA256(k, "s3")
	k = hmacSHA256(k, "aws4_request")
	sig := hex.EncodeToString(hmacSHA256(k, stringToSign))
	req.Header.Set("Authorization", fmt.Sprintf("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		c.accessKey, scope, strings.Join(signed, ";"), sig))

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp, nil, err
	}
	if resp.StatusCode/100 != 2 {
		return resp, data, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, tailString(string(data), 600))
	}
	return resp, data, nil
}

func (c *s3Client) createBucket(ctx context.Context, bucket string) error {
	resp, data, err := c.do(ctx, http.MethodPut, bucket, "", nil, nil, nil)
	if err != nil && resp != nil && resp.StatusCode == http.StatusConflict &&
		bytes.Contains(data, []byte("BucketAlreadyOwnedByYou")) {
		return nil
	}
	return err
}

func (c *s3Client) put(ctx context.Context, bucket, key string, data []byte) error {
	_, _, err := c.do(ctx, http.MethodPut, bucket, key, nil, data, nil)
	return err
}

func (c *s3Client) get(ctx context.Context, bucket, key string) ([]byte, error) {
	_, data, err := c.do(ctx, http.MethodGet, bucket, key, nil, nil, nil)
	return data, err
}

// head returns (nil, nil) when the object does not exist.
func (c *s3Client) head(ctx context.Context, bucket, key string) (http.Header, error) {
	resp, _, err := c.do(ctx, http.MethodHead, bucket, key, nil, nil, nil)
	if resp != nil && resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return resp.Header, nil
}

func (c *s3Client) delete(ctx context.Context, bucket, key string) error {
	_, _, err := c.do(ctx, http.MethodDelete, bucket, key, nil, nil, nil)
	return err
}

type listResult struct {
	Contents []struct {
		Key          string
		Size         int64
		ETag         string
		LastModified time.Time
	}
	IsTruncated           bool
	NextContinuationToken string
}

// list pages through ListObjectsV2 (recursive, no delimiter).
func (c *s3Client) list(ctx context.Context, bucket, prefix string) ([]ObjectInfo, error) {
	var out []ObjectInfo
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		_, data, err := c.do(ctx, http.MethodGet, bucket, "", q, nil, nil)
		if err != nil {
			return nil, err
		}
		var r listResult
		if err := xml.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("parse listing: %w", err)
		}
		for _, o := range r.Contents {
			out = append(out, ObjectInfo{Key: o.Key, Size: o.Size, ETag: strings.Trim(o.ETag, `"`), LastModified: o.LastModified})
		}
		if !r.IsTruncated || r.NextContinuationToken == "" {
			return out, nil
		}
		token = r.NextContinuationToken
	}
}

// Upload is an unfinished multipart upload.
type Upload struct {
	Key      string `xml:"Key"`
	UploadID string `xml:"UploadId"`
}

// uploads lists the bucket's unfinished multipart uploads
// (ListMultipartUploads), which object listings never show.
func (c *s3Client) uploads(ctx context.Context, bucket string) ([]Upload, error) {
	_, data, err := c.do(ctx, http.MethodGet, bucket, "", url.Values{"uploads": {""}}, nil, nil)
	if err != nil {
		return nil, err
	}
	var r struct {
		Uploads []Upload `xml:"Upload"`
	}
	if err := xml.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parse multipart uploads: %w", err)
	}
	return r.Uploads, nil
}
