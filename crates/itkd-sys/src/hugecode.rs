//! The executable's read-only segments (code, constants) moved into transparent huge pages,
//! once, in the master, before any fork.
//!
//! Why: every connection is a fresh `fork` of a pool child. `fork` does not copy the page
//! table entries of file-backed mappings; the worker faults its code back in, 16 pages per
//! fault (the kernel's fault-around), and tears those entries down again at `exit`. That
//! was about 35 of a worker's 114 page faults on a 1 KiB request (bench/README.md). An
//! anonymous mapping backed by 2 MiB pages is copied at `fork` one page-table entry per
//! 2 MiB and never faulted: the worker starts with all of its code mapped.
//!
//! How: for each read-only `PT_LOAD` segment of the main program that starts on a 2 MiB
//! boundary (the `itkd` binary is linked with `-z max-page-size=0x200000`, build.rs), map
//! anonymous memory, ask for huge pages, copy the segment, make it read-only (+ exec),
//! confirm it is backed by huge pages (`MADV_COLLAPSE`), then `mremap` it over the
//! original. The bytes at every address stay the same, so the code running during the
//! move runs on. Anything that fails (no THP, an old kernel, memory too fragmented, a
//! binary linked without the alignment, `ITKD_FILE_BACKED_CODE` set for profilers, which
//! cannot name functions in anonymous memory) leaves the original mapping untouched.

use std::ffi::c_void;
use std::io;

/// The huge page size on x86_64 and (with 4 KiB base pages) aarch64.
const HUGE_PAGE: usize = 2 << 20;

/// What [`move_code_to_huge_pages`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// These many bytes of code and constants now sit in huge pages.
    Moved(usize),
    /// Nothing moved, and why.
    Kept(String),
}

/// One segment to move: where it is, how long, its protection.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    len: usize,
    /// `start + len` rounded up to a huge page, still free of other segments.
    span: usize,
    exec: bool,
}

/// Moves the main program's read-only segments into transparent huge pages.
///
/// Call once, early, in a single-threaded process, before any fork.
pub fn move_code_to_huge_pages() -> Outcome {
    if std::env::var_os("ITKD_FILE_BACKED_CODE").is_some() {
        return Outcome::Kept("ITKD_FILE_BACKED_CODE is set".to_owned());
    }
    match std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        Ok(s) if s.contains("[never]") => {
            return Outcome::Kept("transparent huge pages are disabled (never)".to_owned());
        }
        Ok(_) => {}
        Err(e) => return Outcome::Kept(format!("no transparent huge pages: {e}")),
    }
    match std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size") {
        Ok(s) if s.trim() == HUGE_PAGE.to_string() => {}
        Ok(s) => return Outcome::Kept(format!("huge pages are {} bytes here", s.trim())),
        Err(e) => return Outcome::Kept(format!("no huge page size: {e}")),
    }
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let segments: Vec<Segment> = read_only_segments()
        .into_iter()
        .filter(|s| padding_is_free(&maps, s.start + s.len, s.start + s.span))
        .collect();
    if segments.is_empty() {
        return Outcome::Kept(
            "no read-only segment starts on a 2 MiB boundary with only padding after it".to_owned(),
        );
    }
    let mut moved = 0;
    for segment in segments {
        match move_segment(segment) {
            Ok(()) => moved += segment.len,
            Err(e) => {
                return if moved == 0 {
                    Outcome::Kept(format!("{e}"))
                } else {
                    Outcome::Moved(moved)
                };
            }
        }
    }
    Outcome::Moved(moved)
}

/// The main program's read-only `PT_LOAD` segments that start on a huge page boundary,
/// each with the span up to the next huge page boundary, if no other segment lies in it
/// (what else is mapped there, [`padding_is_free`] checks).
fn read_only_segments() -> Vec<Segment> {
    let mut loads: Vec<(usize, usize, u32)> = Vec::new();
    // SAFETY: dl_iterate_phdr calls `collect` synchronously, on this thread, with a
    // pointer to a valid dl_phdr_info for each loaded object, and `data` is the address of
    // `loads`, alive and exclusively borrowed for the whole call.
    unsafe {
        libc::dl_iterate_phdr(Some(collect), (&raw mut loads).cast());
    }
    loads.sort_unstable();
    let mut segments = Vec::new();
    for (i, &(start, len, flags)) in loads.iter().enumerate() {
        if flags & libc::PF_W != 0 || len == 0 || start % HUGE_PAGE != 0 {
            continue;
        }
        let span = (start + len).next_multiple_of(HUGE_PAGE) - start;
        let next = loads.get(i + 1).map_or(usize::MAX, |&(s, _, _)| s);
        if start + span <= next {
            segments.push(Segment {
                start,
                len,
                span,
                exec: flags & libc::PF_X != 0,
            });
        }
    }
    segments
}

/// Whether nothing but the loader's inaccessible padding (`---p`) is mapped in
/// `[from, to)` (page-rounded), according to the text of /proc/self/maps: the move
/// replaces that range, and must not replace anything else that may lie there.
fn padding_is_free(maps: &str, from: usize, to: usize) -> bool {
    let from = from.next_multiple_of(4096);
    !maps.is_empty()
        && maps.lines().all(|line| {
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                return false;
            };
            let Some((lo, hi)) = range.split_once('-') else {
                return false;
            };
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            else {
                return false;
            };
            hi <= from || lo >= to || perms == "---p"
        })
}

/// dl_iterate_phdr's callback: records the first object's (the main program's) `PT_LOAD`
/// segments as (address, length, flags), then stops the iteration.
extern "C" fn collect(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> i32 {
    // SAFETY: `data` is the `&mut Vec` passed by read_only_segments, and `info` points to
    // a dl_phdr_info whose dlpi_phdr array has dlpi_phnum entries (dl_iterate_phdr(3)).
    let (loads, info) = unsafe { (&mut *data.cast::<Vec<(usize, usize, u32)>>(), &*info) };
    if info.dlpi_phdr.is_null() {
        return 1;
    }
    // SAFETY: as above: dlpi_phdr points to dlpi_phnum program headers.
    let headers = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
    for h in headers.iter().filter(|h| h.p_type == libc::PT_LOAD) {
        let (Ok(vaddr), Ok(len)) = (usize::try_from(h.p_vaddr), usize::try_from(h.p_memsz)) else {
            continue;
        };
        let base = usize::try_from(info.dlpi_addr).unwrap_or(0);
        loads.push((base + vaddr, len, h.p_flags));
    }
    1
}

fn last_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Copies one segment into huge pages and puts the copy in its place.
fn move_segment(segment: Segment) -> io::Result<()> {
    let Segment {
        start,
        len,
        span,
        exec,
    } = segment;
    // SAFETY: a fresh private anonymous mapping; the kernel picks the address.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span + HUGE_PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return Err(last_error("mmap"));
    }
    let raw = raw as usize;
    let copy = raw.next_multiple_of(HUGE_PAGE);
    // Give back the unaligned head and tail: [raw, copy) and [copy + span, raw + span + HP).
    // SAFETY: both ranges lie inside the mapping made above, which nothing else uses.
    unsafe {
        if copy > raw {
            libc::munmap(raw as *mut c_void, copy - raw);
        }
        let tail = raw + span + HUGE_PAGE - (copy + span);
        if tail > 0 {
            libc::munmap((copy + span) as *mut c_void, tail);
        }
    }
    let result = fill_and_swap(copy, start, len, span, exec);
    if result.is_err() {
        // SAFETY: [copy, copy + span) is still the anonymous mapping made above (the swap
        // is the last step and did not happen); nothing points into it.
        unsafe { libc::munmap(copy as *mut c_void, span) };
    }
    result
}

/// Fills the aligned anonymous range at `copy` with the segment's bytes, checks it is
/// backed by huge pages, seals its protection and moves it over the segment.
fn fill_and_swap(copy: usize, start: usize, len: usize, span: usize, exec: bool) -> io::Result<()> {
    let dst = copy as *mut c_void;
    // SAFETY: madvise on the anonymous range this function owns; only advice.
    if unsafe { libc::madvise(dst, span, libc::MADV_HUGEPAGE) } != 0 {
        return Err(last_error("madvise(MADV_HUGEPAGE)"));
    }
    // SAFETY: [start, start + len) is a mapped, readable PT_LOAD segment of the main
    // program (read-only, so nothing writes it meanwhile); [copy, copy + span) is the
    // writable anonymous range, span >= len; the two do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(start as *const u8, copy as *mut u8, len) };
    // Returns at once when the faults above got huge pages; otherwise tries to assemble
    // them now, and fails if it cannot (or on kernels before 6.1).
    // SAFETY: madvise on the anonymous range this function owns.
    if unsafe { libc::madvise(dst, span, libc::MADV_COLLAPSE) } != 0 {
        return Err(last_error("madvise(MADV_COLLAPSE)"));
    }
    let prot = if exec {
        libc::PROT_READ | libc::PROT_EXEC
    } else {
        libc::PROT_READ
    };
    // SAFETY: changes the protection of the range this function owns.
    if unsafe { libc::mprotect(dst, span, prot) } != 0 {
        return Err(last_error("mprotect"));
    }
    // SAFETY: moves the copy over [start, start + span): the segment itself and, up to
    // the next huge page boundary, the loader's inaccessible padding after it, which
    // read_only_segments checked holds no other segment of the program. The copy holds
    // the same bytes at the same addresses, with the same protection, so code and
    // constants in use (this function's own code included) read the same after the
    // move. The process is single-threaded (the caller's contract).
    let moved = unsafe {
        libc::mremap(
            dst,
            span,
            span,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            start as *mut c_void,
        )
    };
    if moved == libc::MAP_FAILED {
        return Err(last_error("mremap"));
    }
    let name = c"itkd code";
    // SAFETY: names the anonymous range in /proc/PID/maps; the kernel copies the string.
    // Failure (kernels before 5.17, or without CONFIG_ANON_VMA_NAME) is harmless.
    unsafe {
        libc::prctl(
            libc::PR_SET_VMA,
            libc::PR_SET_VMA_ANON_NAME,
            start,
            span,
            name.as_ptr(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::padding_is_free;

    const MAPS: &str = "\
55f0f6a00000-55f0f6b44000 r--p 00000000 fe:00 5423293  /usr/sbin/itkd
55f0f6b44000-55f0f6c00000 ---p 00000000 00:00 0
55f0f6c00000-55f0f6f47000 r-xp 00200000 fe:00 5423293  /usr/sbin/itkd
55f0f6f47000-55f0f7000000 ---p 00000000 00:00 0
55f0f7000000-55f0f7032000 r--p 00600000 fe:00 5423293  /usr/sbin/itkd
";

    #[test]
    fn only_the_loaders_padding_may_lie_between_a_segment_and_its_2_mib_boundary() {
        // The code segment ends at ..f46aa0; up to ..7000000 there is padding only.
        assert!(padding_is_free(MAPS, 0x55f0f6f46aa0, 0x55f0f7000000));
        assert!(padding_is_free(MAPS, 0x55f0f6b43888, 0x55f0f6c00000));
        // Reaching into the next segment, or something readable in the gap: no.
        assert!(!padding_is_free(MAPS, 0x55f0f6f46aa0, 0x55f0f7200000));
        let squatter = MAPS.replace(
            "55f0f6f47000-55f0f7000000 ---p",
            "55f0f6f47000-55f0f7000000 rw-p",
        );
        assert!(!padding_is_free(&squatter, 0x55f0f6f46aa0, 0x55f0f7000000));
        // Nothing mapped there at all is fine; an unreadable maps file is not.
        assert!(padding_is_free(MAPS, 0x7f0000000000, 0x7f0000200000));
        assert!(!padding_is_free("", 0x55f0f6f46aa0, 0x55f0f7000000));
    }
}
