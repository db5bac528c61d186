package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k := NewRandomKey()
	for _, n := range []int{0, 1, 15, 16, 17, 1000, 1 << 20} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		ct := k.Seal(nil, pt)
		if len(ct) != n+Extension {
			t.Fatalf("%d: sealed length %d", n, len(ct))
		}
		got, err := k.Open(nil, ct)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("%d: open: %v", n, err)
		}
		for _, i := range []int{0, len(ct) / 2, len(ct) - 1} {
			bad := append([]byte(nil), ct...)
			bad[i] ^= 1
			if _, err := k.Open(nil, bad); !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("%d: flipped byte %d: %v", n, i, err)
			}
		}
	}
	if _, err := NewRandomKey().Open(nil, k.Seal(nil, []byte("x"))); !errors.Is(err, ErrUnauthenticated) {
		t.Fatal("wrong key opened a ciphertext")
	}
}

// TestPoly1305AES checks the MAC against the Poly1305-AES test vector of
// Bernstein's paper (appendix B, second example).
func TestPoly1305AES(t *testing.T) {
	k := &Key{}
	copy(k.MACK[:], []byte{0xec, 0x07, 0x4c, 0x83, 0x55, 0x80, 0x74, 0x17, 0x01, 0x42, 0x5b, 0x62, 0x32, 0x35, 0xad, 0xd6})
	copy(k.MACR[:], []byte{0x85, 0x1f, 0xc4, 0x0c, 0x34, 0x67, 0xac, 0x0b, 0xe0, 0x5c, 0xc2, 0x04, 0x04, 0xf3, 0xf7, 0x00})
	k.Encrypt[0] = 1
	k.init()
	nonce := []byte{0xfb, 0x44, 0x73, 0x50, 0xc4, 0xe8, 0x68, 0xc5, 0x2a, 0xc3, 0x27, 0x5c, 0xf9, 0xd4, 0x32, 0x7e}
	msg := []byte{0xf3, 0xf6}
	want := []byte{0xf4, 0xc6, 0x33, 0xc3, 0x04, 0x4f, 0xc1, 0x45, 0xf8, 0x4f, 0x33, 0x5c, 0xb8, 0x19, 0x53, 0xde}
	var got [16]byte
	k.mac(&got, nonce, msg)
	if !bytes.Equal(got[:], want) {
		t.Fatalf("Poly1305-AES = %x, want %x", got, want)
	}
}

func TestKeyJSON(t *testing.T) {
	k := NewRandomKey()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var k2 Key
	if err := k2.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	pt, err := k2.Open(nil, k.Seal(nil, []byte("hello")))
	if err != nil || string(pt) != "hello" {
		t.Fatal("round trip through JSON lost the key")
	}
}

func TestSealInPlace(t *testing.T) {
	k := NewRandomKey()
	pt := []byte("in place, in place, in place")
	buf := make([]byte, 16+len(pt), 16+len(pt)+16)
	copy(buf[16:], pt)
	sealed := k.Seal(buf[:0], buf[16:])
	if &sealed[0] != &buf[0] {
		t.Fatal("Seal did not encrypt in place")
	}
	got, err := k.Open(nil, sealed)
	if err != nil || string(got) != string(pt) {
		t.Fatalf("in-place seal does not open: %v %q", err, got)
	}
}
