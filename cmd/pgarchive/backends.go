package main

// Every rclone backend, so any remote a user's rclone.conf defines works.
import _ "github.com/rclone/rclone/backend/all"
