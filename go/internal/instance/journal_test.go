package instance

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestJournalFiles(t *testing.T) {
	d, err := Open(t.TempDir(), "j")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if b, err := d.ReadState(); b != nil || err != nil {
		t.Fatalf("ReadState without a state = %q, %v", b, err)
	}
	for _, n := range []uint64{10, 2, 3} {
		f, err := d.OpenJournal(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("x\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if st, err := os.Stat(d.JournalPath(2)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("journal 2: %v %v", st, err)
	}
	if ns, err := d.Journals(); err != nil || !reflect.DeepEqual(ns, []uint64{2, 3, 10}) {
		t.Fatalf("Journals = %v, %v", ns, err)
	}
	if err := d.RemoveJournalsBefore(3); err != nil {
		t.Fatal(err)
	}
	if ns, _ := d.Journals(); !reflect.DeepEqual(ns, []uint64{3, 10}) {
		t.Fatalf("after RemoveJournalsBefore(3): %v", ns)
	}
	if err := d.WriteState([]byte(`{"pid":1}`)); err != nil {
		t.Fatal(err)
	}
	if b, err := d.ReadState(); string(b) != `{"pid":1}` || err != nil {
		t.Fatalf("ReadState = %q, %v", b, err)
	}
	if err := d.KeepPrevState(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(d.Path(), "state.json.prev")); string(b) != `{"pid":1}` {
		t.Fatalf("state.json.prev = %q", b)
	}
	if ns, _ := d.Journals(); len(ns) != 0 {
		t.Fatalf("journals left after KeepPrevState: %v", ns)
	}
	if b, _ := d.ReadState(); b != nil {
		t.Fatalf("state.json left: %q", b)
	}
	if err := d.KeepPrevState(); err != nil { // nothing to keep
		t.Fatal(err)
	}
}
