//! Reading file regions into fresh buffers without zero-filling them first.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Reads up to `want` bytes of `file` at `offset` with one `pread(2)` into a new buffer
/// of exactly that capacity, which is not zero-filled first (for a 100 KiB file the
/// zeroing cost more than the read). The buffer's length is what was read: shorter at
/// the end of the file, empty at or past it.
pub fn pread_new(file: &File, offset: u64, want: usize) -> std::io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(want);
    let offset = libc::off_t::try_from(offset)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: the destination is the buffer's spare capacity, `want` bytes long and
        // exclusively borrowed; pread writes at most `want` bytes into it.
        let n = unsafe {
            libc::pread(
                file.as_raw_fd(),
                buf.spare_capacity_mut().as_mut_ptr().cast(),
                want,
                offset,
            )
        };
        match usize::try_from(n) {
            Ok(read) => {
                // SAFETY: pread initialised the first `read` (<= want = capacity) bytes.
                unsafe { buf.set_len(read) };
                return Ok(buf);
            }
            Err(_) => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_regions_and_stops_at_the_end() {
        let path = std::env::temp_dir().join(format!("itkd-pread-{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        assert_eq!(pread_new(&f, 0, 10_000).unwrap(), data);
        assert_eq!(pread_new(&f, 4000, 100).unwrap(), &data[4000..4100]);
        assert_eq!(pread_new(&f, 9990, 100).unwrap(), &data[9990..]);
        assert!(pread_new(&f, 20_000, 100).unwrap().is_empty());
    }
}
