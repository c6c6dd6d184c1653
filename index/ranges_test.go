package index

import (
	"reflect"
	"testing"
)

func TestRangesAddRemove(t *testing.T) {
	for _, tc := range []struct {
		name string
		rs   Ranges
		op   func(Ranges) Ranges
		want Ranges
	}{
		{"add to empty", nil, func(r Ranges) Ranges { return r.Add(5, 5) }, Ranges{{5, 5}}},
		{"add zero", Ranges{{1, 1}}, func(r Ranges) Ranges { return r.Add(5, 0) }, Ranges{{1, 1}}},
		{"add disjoint before", Ranges{{10, 5}}, func(r Ranges) Ranges { return r.Add(0, 5) }, Ranges{{0, 5}, {10, 5}}},
		{"add adjacent merges", Ranges{{10, 5}}, func(r Ranges) Ranges { return r.Add(5, 5) }, Ranges{{5, 10}}},
		{"add bridging", Ranges{{0, 5}, {10, 5}, {20, 5}}, func(r Ranges) Ranges { return r.Add(3, 10) }, Ranges{{0, 15}, {20, 5}}},
		{"add inside", Ranges{{0, 10}}, func(r Ranges) Ranges { return r.Add(2, 3) }, Ranges{{0, 10}}},
		{"add after", Ranges{{0, 10}}, func(r Ranges) Ranges { return r.Add(20, 3) }, Ranges{{0, 10}, {20, 3}}},
		{"remove middle", Ranges{{0, 10}}, func(r Ranges) Ranges { return r.Remove(3, 4) }, Ranges{{0, 3}, {7, 3}}},
		{"remove all", Ranges{{0, 10}, {20, 5}}, func(r Ranges) Ranges { return r.Remove(0, 30) }, Ranges{}},
		{"truncate", Ranges{{0, 10}, {20, 5}}, func(r Ranges) Ranges { return r.Remove(5, ToEnd(5)) }, Ranges{{0, 5}}},
		{"remove none", Ranges{{0, 10}}, func(r Ranges) Ranges { return r.Remove(10, 10) }, Ranges{{0, 10}}},
		{"clip", Ranges{{0, 10}, {20, 10}}, func(r Ranges) Ranges { return r.Clip(5, 20) }, Ranges{{5, 5}, {20, 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := append(Ranges(nil), tc.rs...)
			got := tc.op(tc.rs)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(before, tc.rs) && len(before) > 0 {
				t.Errorf("receiver modified: %v -> %v", before, tc.rs)
			}
		})
	}
}

func TestRangesSeek(t *testing.T) {
	rs := Ranges{{10, 10}, {30, 5}}
	for _, tc := range []struct {
		off      int64
		data     int64
		dataOK   bool
		hole     int64
		contains bool
	}{
		{0, 10, true, 0, false},
		{10, 10, true, 20, true},
		{15, 15, true, 20, true},
		{20, 30, true, 20, false},
		{34, 34, true, 35, true},
		{35, 0, false, 35, false},
	} {
		d, ok := rs.NextData(tc.off)
		if d != tc.data || ok != tc.dataOK {
			t.Errorf("NextData(%d) = %d, %v; want %d, %v", tc.off, d, ok, tc.data, tc.dataOK)
		}
		if h := rs.NextHole(tc.off); h != tc.hole {
			t.Errorf("NextHole(%d) = %d, want %d", tc.off, h, tc.hole)
		}
		if c := rs.Contains(tc.off, 1); c != tc.contains {
			t.Errorf("Contains(%d, 1) = %v, want %v", tc.off, c, tc.contains)
		}
	}
	if got := rs.Bytes(); got != 15 {
		t.Errorf("Bytes = %d, want 15", got)
	}
}

func TestRangesMarshal(t *testing.T) {
	for _, rs := range []Ranges{nil, {{0, 1}}, {{5, 10}, {100, 1 << 40}}, {{1 << 50, 7}}} {
		b, err := rs.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnmarshalRanges(b)
		if err != nil {
			t.Fatalf("unmarshal %v: %v", rs, err)
		}
		if len(rs) == 0 && len(got) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, rs) {
			t.Errorf("round trip %v -> %v", rs, got)
		}
	}
	for _, bad := range [][]byte{{0x80}, {1}, {1, 0}, {0, 1, 0, 1}} {
		if _, err := UnmarshalRanges(bad); err == nil {
			t.Errorf("UnmarshalRanges(%v) accepted corrupt input", bad)
		}
	}
}
