// YtDlp: runs yt-dlp as a child process (layer 2; knows nothing of jobs).
