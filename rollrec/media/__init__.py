"""Frame streams to video files: knows frames, ffmpeg and files, never a rollout.

`writer` (`VideoWriter`, `save_video`, `save_env_videos`: ffmpeg through a pipe, constant memory,
no half-written file under the final name), `background` (`BackgroundVideoWriter`: the same on
its own thread, with back-pressure), `frames` (normalising numpy/torch frames, tiling batches),
`collect` (`collect_frames_from_env`: render an env step by step into a video).

Why a package of its own, below `rollrec.io`: the recorder takes frames while it records
(`rollrec.engine.Recorder.record_frame`) and the renderer of recorded rollouts writes them
(`rollrec.video`). The engine sits below the video package, so the frame stream it uses cannot
live there; here it is a layer the engine may import, and the engine talks to it only through a
small protocol (`rollrec.engine.frames.FrameSink`) whose default is `BackgroundVideoWriter`,
imported with the first frame. `rollrec.video` re-exports the user-facing names. Per-env camera
streams live here too: `codecs` (H.264 and zstd streams: one encoder and decoder per stream),
`streams` (`StreamSet`: a camera's streams encoded in parallel), `colormap` (depth and labels as
pictures, for the replay and the video).

Imports: numpy, imageio-ffmpeg and OpenCV (when used), PyAV and zstandard (the camera extra,
when a camera stream is encoded or decoded), torch only for frames that are tensors,
`rollrec.format` (the camera streams' spec), and `rollrec._npz.files` (a video file is created exclusively, never through a symlink). This
``__init__`` imports nothing.
"""
