package authtoken

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func TestParsePublicKeyPEM(t *testing.T) {
	testKeys(t)
	edPub := testEd.Public().(ed25519.PublicKey)
	if k, err := ParsePublicKeyPEM(pkixPEM(t, edPub)); err != nil || !edPub.Equal(k) {
		t.Fatalf("PKIX Ed25519: %v %v", k, err)
	}
	if k, err := ParsePublicKeyPEM(pkixPEM(t, &testRSA.PublicKey)); err != nil || !testRSA.PublicKey.Equal(k) {
		t.Fatalf("PKIX RSA: %v", err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&testRSA.PublicKey)})
	if k, err := ParseRSAPublicKeyPEM(pkcs1); err != nil || !testRSA.PublicKey.Equal(k) {
		t.Fatalf("PKCS #1 RSA: %v", err)
	}
	if _, err := ParseEd25519PublicKeyPEM(pkixPEM(t, &testRSA.PublicKey)); err == nil {
		t.Fatal("RSA key taken for Ed25519")
	}
	if _, err := ParseRSAPublicKeyPEM(pkixPEM(t, edPub)); err == nil {
		t.Fatal("Ed25519 key taken for RSA")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	priv, _ := x509.MarshalPKCS8PrivateKey(testEd)
	for name, data := range map[string][]byte{
		"ecdsa":       pkixPEM(t, &ec.PublicKey),
		"1024-bit":    pkixPEM(t, &small.PublicKey),
		"private key": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}),
		"no PEM":      []byte("not a key"),
		"bad DER":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := ParsePublicKeyPEM(data); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
