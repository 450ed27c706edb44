package control

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// watchDebounce lets an editor finish writing (several events for one save)
// before the file is read.
const watchDebounce = 300 * time.Millisecond

// watch reloads the configuration when its file changes. It watches the
// file's directory, not the file, because editors and config managers
// replace files by renaming a new one over them.
func (d *Director) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(d.path)
	if err != nil {
		w.Close()
		return err
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == abs && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
					timer = time.After(watchDebounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				d.log.Warn("watching the configuration file", zap.Error(err))
			case <-timer:
				timer = nil
				if err := d.Reload(); err != nil {
					d.log.Error("reload refused; configuration unchanged", zap.String("by", "file change"), zap.Error(err))
				}
			}
		}
	}()
	return nil
}
