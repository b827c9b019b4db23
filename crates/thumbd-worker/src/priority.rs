//! Image work runs below the API's priority: on a busy machine a request should wait for a
//! CPU time slice behind nothing, a thumbnail behind requests.

/// `nice` value given to threads that run thumbcore (0 normal, 19 lowest).
const NICENESS: i32 = 10;

/// `nice` value of the thread that encodes deferred renditions: below every other, so it
/// runs on what the image threads leave.
pub(crate) const BACKGROUND: i32 = 19;

/// Lowers the calling thread's CPU priority (Linux: threads have their own nice value).
/// Best effort: failures are ignored, other systems are left alone.
pub(crate) fn lower_this_thread() {
    lower_this_thread_to(NICENESS);
}

/// [`lower_this_thread`] to `niceness` (0 normal, 19 lowest).
pub(crate) fn lower_this_thread_to(niceness: i32) {
    #[cfg(target_os = "linux")]
    {
        #[allow(unsafe_code)]
        // SAFETY: gettid and setpriority take plain integers and touch no memory of ours.
        let tid = unsafe { libc::gettid() };
        if let Ok(tid) = u32::try_from(tid) {
            #[allow(unsafe_code)]
            // SAFETY: as above; PRIO_PROCESS with a thread id sets that thread's nice value.
            let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, niceness) };
        }
    }
}
