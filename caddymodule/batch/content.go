package batch

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// decodeContent undoes a gzip or zstd Content-Encoding of a sub-response,
// so its body is embedded as the JSON or text it is. Sub-requests carry the
// batch's Accept-Encoding so that they use the same cache variants as the
// client's own requests; the batch answer is encoded as a whole instead.
// A body that decodes to more than limit bytes is a too_large 502; one
// that does not decode is a 502; another coding is left as it is (the
// body then goes out in base64 with its Content-Encoding).
func decodeContent(o outcome, limit int64) outcome {
	ce := strings.ToLower(strings.TrimSpace(o.header.Get("Content-Encoding")))
	if ce == "" || ce == "identity" || len(o.body) == 0 {
		return o
	}
	var r io.Reader
	switch ce {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(o.body))
		if err != nil {
			return undecodable(ce, err)
		}
		r = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(o.body), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1))
		if err != nil {
			return undecodable(ce, err)
		}
		defer zr.Close()
		r = zr
	default:
		return o
	}
	body, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil && !errors.Is(err, zstd.ErrWindowSizeExceeded) && !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return undecodable(ce, err)
	}
	if err != nil || int64(len(body)) > limit {
		return problemOutcome(http.StatusBadGateway, subTooLarge, "Sub-response too large",
			fmt.Sprintf("the response was larger than %d bytes", limit))
	}
	h := o.header.Clone()
	h.Del("Content-Encoding")
	o.header, o.body = h, body
	return o
}

func undecodable(coding string, err error) outcome {
	return problemOutcome(http.StatusBadGateway, subServerError, "Sub-response not decodable",
		fmt.Sprintf("its %s body does not decode: %v", coding, err))
}

// requestCodings are the content codings a batch request body may have
// (RFC 9110 §8.4), as the Accept-Encoding of a 415 names them.
const requestCodings = "gzip, zstd"

// errBatchTooLarge is what a batch body reader answers past the limit.
var errBatchTooLarge = errors.New("spark_batch: batch body over max_batch_size")

// capReader reads at most n bytes of r, then fails with errBatchTooLarge.
type capReader struct {
	r io.Reader
	n int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errBatchTooLarge
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n < 0 {
		return n, errBatchTooLarge
	}
	return n, err
}

// openBatchBody returns the batch request body decoded from the one
// content coding it names (none, identity, gzip or zstd), reading at most
// limit bytes of it as sent. The decoded body is bounded by decodeBatch;
// the bound here keeps a stream that decodes to little (empty blocks) from
// being read without end. closeBody releases the decoder. Another coding, or
// several, is a 415.
func openBatchBody(body io.Reader, contentEncoding []string, limit int64) (r io.Reader, closeBody func(), ie *inputError) {
	coding := strings.ToLower(strings.TrimSpace(strings.Join(contentEncoding, ",")))
	raw := &capReader{r: body, n: limit}
	switch coding {
	case "", "identity":
		return raw, func() {}, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(raw)
		if err != nil {
			if errors.Is(err, errBatchTooLarge) {
				return nil, nil, tooLarge("the batch body is larger than %d bytes", limit)
			}
			return nil, nil, badRequest("the body does not decode as gzip: %v", err)
		}
		return codingReader{zr, "gzip"}, func() {}, nil
	case "zstd":
		zr, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1))
		if err != nil {
			return nil, nil, badRequest("the body does not decode as zstd: %v", err)
		}
		return codingReader{zr, "zstd"}, zr.Close, nil
	}
	return nil, nil, &inputError{status: http.StatusUnsupportedMediaType, title: "Unsupported Media Type",
		detail: fmt.Sprintf("Content-Encoding %q: a batch body may be sent as %s, or not encoded", truncate(coding), requestCodings)}
}

// codingReader names its content coding in the errors of r (but io.EOF
// and errBatchTooLarge, which are passed as they are).
type codingReader struct {
	r      io.Reader
	coding string
}

func (c codingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, errBatchTooLarge) { //nolint:errorlint // io.EOF is returned unwrapped by contract
		err = fmt.Errorf("%s: %w", c.coding, err)
	}
	return n, err
}
