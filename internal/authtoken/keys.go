package authtoken

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// HMACKey is an HS256 secret, optionally named by a key id.
type HMACKey struct {
	ID     string // the kid that selects it; empty: none
	Secret []byte
}

// Ed25519Key is an Ed25519 public key verifying EdDSA tokens.
type Ed25519Key struct {
	ID  string // the kid that selects it; empty: none
	Key ed25519.PublicKey
}

// RSAKey is an RSA public key verifying RS256 tokens.
type RSAKey struct {
	ID  string // the kid that selects it; empty: none
	Key *rsa.PublicKey
}

// ParsePublicKeyPEM reads the first PEM block of data: a PKIX "PUBLIC KEY"
// holding an Ed25519 or RSA key, or a PKCS #1 "RSA PUBLIC KEY". It returns
// an ed25519.PublicKey or an *rsa.PublicKey.
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	blk, _ := pem.Decode(data)
	if blk == nil {
		return nil, errors.New("no PEM block in public key")
	}
	switch blk.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		switch k := k.(type) {
		case ed25519.PublicKey:
			return k, nil
		case *rsa.PublicKey:
			return k, checkRSA(k)
		default:
			return nil, fmt.Errorf("public key is %T, want Ed25519 or RSA", k)
		}
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA public key: %w", err)
		}
		return k, checkRSA(k)
	default:
		return nil, fmt.Errorf("PEM block is %q, want PUBLIC KEY or RSA PUBLIC KEY", blk.Type)
	}
}

// ParseEd25519PublicKeyPEM is ParsePublicKeyPEM for an Ed25519 key only.
func ParseEd25519PublicKeyPEM(data []byte) (ed25519.PublicKey, error) {
	k, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want Ed25519", k)
	}
	return ek, nil
}

// ParseRSAPublicKeyPEM is ParsePublicKeyPEM for an RSA key only.
func ParseRSAPublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	k, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want RSA", k)
	}
	return rk, nil
}

func checkRSA(k *rsa.PublicKey) error {
	bits := 0
	if k.N != nil {
		bits = k.N.BitLen()
	}
	if bits < MinRSABits {
		return fmt.Errorf("RSA key of %d bits: at least %d are required", bits, MinRSABits)
	}
	return nil
}
