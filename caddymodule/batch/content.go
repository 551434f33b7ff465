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
