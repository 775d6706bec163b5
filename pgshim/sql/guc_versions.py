"""What PostgreSQL 16 to 18 changed of PostgreSQL 15's configuration parameters (gucs.py).

One change a line: the version that made it, then ``+`` and the parameter's row as that version's
pg_settings shows it (name, vartype, unit, context, category, short_desc, min_val, max_val,
enumvals, boot_val: a new parameter, or one whose row changed), or ``-`` and the name of a
parameter that version no longer has. The rows are those of PostgreSQL 16.15's, 17.11's and
18.6's pg_settings, each put at the first version that has it (16's minor releases brought the
"TCP Settings" category, file_extend_method and output_plugin_libraries; 17 quoted the parameters
named in descriptions). extension_destdir comes from Debian's build of 15.18 (gucs.py's table).
"""

CHANGES = r"""
16|-|extension_destdir
16|-|force_parallel_mode
16|-|lc_collate
16|-|lc_ctype
16|-|promote_trigger_file
16|-|vacuum_defer_cleanup_age
16|+|createrole_self_grant|string||user|Client Connection Defaults / Statement Behavior|Sets whether a CREATEROLE user automatically grants the role to themselves, and with which options.||||
16|+|debug_io_direct|string||postmaster|Developer Options|Use direct I/O for file access.||||
16|+|debug_logical_replication_streaming|enum||user|Developer Options|Forces immediate streaming or serialization of changes in large transactions.|||buffered,immediate|buffered
16|+|debug_parallel_query|enum||user|Developer Options|Forces the planner's use parallel query nodes.|||off,on,regress|off
16|+|enable_presorted_aggregate|bool||user|Query Tuning / Planner Method Configuration|Enables the planner's ability to produce plans that provide presorted input for ORDER BY / DISTINCT aggregate functions.||||on
16|+|gss_accept_delegation|bool||sighup|Connections and Authentication / Authentication|Sets whether GSSAPI delegation should be accepted from the client.||||off
16|+|icu_validation_level|enum||user|Client Connection Defaults / Locale and Formatting|Log level for reporting invalid ICU locale strings.|||disabled,debug5,debug4,debug3,debug2,debug1,log,notice,warning,error|warning
16|+|max_parallel_apply_workers_per_subscription|integer||sighup|Replication / Subscribers|Maximum number of parallel apply workers per subscription.|0|1024||2
16|+|reserved_connections|integer||postmaster|Connections and Authentication / Connection Settings|Sets the number of connection slots reserved for roles with privileges of pg_use_reserved_connections.|0|262143||0
16|+|scram_iterations|integer||user|Connections and Authentication / Authentication|Sets the iteration count for SCRAM secret generation.|1|2147483647||4096
16|+|send_abort_for_crash|bool||sighup|Developer Options|Send SIGABRT not SIGQUIT to child processes after backend crash.||||off
16|+|send_abort_for_kill|bool||sighup|Developer Options|Send SIGABRT not SIGKILL to stuck child processes.||||off
16|+|vacuum_buffer_usage_limit|integer|kB|user|Resource Usage / Memory|Sets the buffer pool size for VACUUM, ANALYZE, and autovacuum.|0|16777216||256
16|+|client_connection_check_interval|integer|ms|user|Connections and Authentication / TCP Settings|Sets the time interval between checks for disconnection while running queries.|0|2147483647||0
16|+|file_extend_method|enum||sighup|Resource Usage / Disk|Selects the method used for extending data files.|||posix_fallocate,write_zeros|posix_fallocate
16|+|output_plugin_libraries|string||superuser|Replication / Sending Servers|Lists libraries that may be named as logical decoding output plugins.||||pgoutput, test_decoding
16|+|tcp_keepalives_count|integer||user|Connections and Authentication / TCP Settings|Maximum number of TCP keepalive retransmits.|0|2147483647||0
16|+|tcp_keepalives_idle|integer|s|user|Connections and Authentication / TCP Settings|Time between issuing TCP keepalives.|0|2147483647||0
16|+|tcp_keepalives_interval|integer|s|user|Connections and Authentication / TCP Settings|Time between TCP keepalive retransmits.|0|2147483647||0
16|+|tcp_user_timeout|integer|ms|user|Connections and Authentication / TCP Settings|TCP user timeout.|0|2147483647||0
17|-|db_user_namespace
17|-|old_snapshot_threshold
17|-|trace_recovery_messages
17|+|allow_alter_system|bool||sighup|Version and Platform Compatibility / Other Platforms and Clients|Allows running the ALTER SYSTEM command.||||on
17|+|commit_timestamp_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the commit timestamp cache.|0|131072||0
17|+|enable_group_by_reordering|bool||user|Query Tuning / Planner Method Configuration|Enables reordering of GROUP BY keys.||||on
17|+|event_triggers|bool||superuser|Client Connection Defaults / Statement Behavior|Enables event triggers.||||on
17|+|huge_pages_status|enum||internal|Preset Options|Indicates the status of huge pages.|||off,on,unknown|unknown
17|+|io_combine_limit|integer|8kB|user|Resource Usage / Asynchronous Behavior|Limit on the size of data reads and writes.|1|32||16
17|+|max_notify_queue_pages|integer||postmaster|Resource Usage / Disk|Sets the maximum number of allocated pages for NOTIFY / LISTEN queue.|64|2147483647||1048576
17|+|multixact_member_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the MultiXact member cache.|16|131072||32
17|+|multixact_offset_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the MultiXact offset cache.|16|131072||16
17|+|notify_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the LISTEN/NOTIFY message cache.|16|131072||16
17|+|serializable_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the serializable transaction cache.|16|131072||32
17|+|subtransaction_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the subtransaction cache.|0|131072||0
17|+|summarize_wal|bool||sighup|Write-Ahead Log / Summarization|Starts the WAL summarizer process to enable incremental backup.||||off
17|+|sync_replication_slots|bool||sighup|Replication / Standby Servers|Enables a physical standby to synchronize logical failover replication slots from the primary server.||||off
17|+|synchronized_standby_slots|string||sighup|Replication / Primary Server|Lists streaming replication standby server replication slot names that logical WAL sender processes will wait for.||||
17|+|trace_connection_negotiation|bool||postmaster|Developer Options|Logs details of pre-authentication connection handshake.||||off
17|+|transaction_buffers|integer|8kB|postmaster|Resource Usage / Memory|Sets the size of the dedicated buffer pool used for the transaction status cache.|0|131072||0
17|+|transaction_timeout|integer|ms|user|Client Connection Defaults / Statement Behavior|Sets the maximum allowed duration of any transaction within a session (not a prepared transaction).|0|2147483647||0
17|+|wal_summary_keep_time|integer|min|sighup|Write-Ahead Log / Summarization|Time for which WAL summary files should be kept.|0|35791394||14400
17|+|maintenance_work_mem|integer|kB|user|Resource Usage / Memory|Sets the maximum memory to be used for maintenance operations.|64|2147483647||65536
17|+|archive_mode|enum||postmaster|Write-Ahead Log / Archiving|Allows archiving of WAL files using "archive_command".|||always,on,off|off
17|+|commit_siblings|integer||user|Write-Ahead Log / Settings|Sets the minimum number of concurrent open transactions required before performing "commit_delay".|0|1000||5
17|+|hash_mem_multiplier|real||user|Resource Usage / Memory|Multiple of "work_mem" to use for hash tables.|1|1000||2
17|+|log_statement_sample_rate|real||superuser|Reporting and Logging / When to Log|Fraction of statements exceeding "log_min_duration_sample" to be logged.|0|1||1
17|+|ssl_passphrase_command_supports_reload|bool||sighup|Connections and Authentication / SSL|Controls whether "ssl_passphrase_command" is called during server reload.||||off
17|+|maintenance_io_concurrency|integer||user|Resource Usage / Asynchronous Behavior|A variant of "effective_io_concurrency" that is used for maintenance work.|0|1000||10
17|+|vacuum_buffer_usage_limit|integer|kB|user|Resource Usage / Memory|Sets the buffer pool size for VACUUM, ANALYZE, and autovacuum.|0|16777216||2048
18|-|ssl_ecdh_curve
18|+|array_nulls|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Enables input of NULL elements in arrays.||||on
18|+|autovacuum|bool||sighup|Vacuuming / Automatic Vacuuming|Starts the autovacuum subprocess.||||on
18|+|autovacuum_analyze_scale_factor|real||sighup|Vacuuming / Automatic Vacuuming|Number of tuple inserts, updates, or deletes prior to analyze as a fraction of reltuples.|0|100||0.1
18|+|autovacuum_analyze_threshold|integer||sighup|Vacuuming / Automatic Vacuuming|Minimum number of tuple inserts, updates, or deletes prior to analyze.|0|2147483647||50
18|+|autovacuum_freeze_max_age|integer||postmaster|Vacuuming / Automatic Vacuuming|Age at which to autovacuum a table to prevent transaction ID wraparound.|100000|2000000000||200000000
18|+|autovacuum_max_workers|integer||sighup|Vacuuming / Automatic Vacuuming|Sets the maximum number of simultaneously running autovacuum worker processes.|1|262143||3
18|+|autovacuum_multixact_freeze_max_age|integer||postmaster|Vacuuming / Automatic Vacuuming|Multixact age at which to autovacuum a table to prevent multixact wraparound.|10000|2000000000||400000000
18|+|autovacuum_naptime|integer|s|sighup|Vacuuming / Automatic Vacuuming|Time to sleep between autovacuum runs.|1|2147483||60
18|+|autovacuum_vacuum_cost_delay|real|ms|sighup|Vacuuming / Automatic Vacuuming|Vacuum cost delay in milliseconds, for autovacuum.|-1|100||2
18|+|autovacuum_vacuum_cost_limit|integer||sighup|Vacuuming / Automatic Vacuuming|Vacuum cost amount available before napping, for autovacuum.|-1|10000||-1
18|+|autovacuum_vacuum_insert_scale_factor|real||sighup|Vacuuming / Automatic Vacuuming|Number of tuple inserts prior to vacuum as a fraction of reltuples.|0|100||0.2
18|+|autovacuum_vacuum_insert_threshold|integer||sighup|Vacuuming / Automatic Vacuuming|Minimum number of tuple inserts prior to vacuum.|-1|2147483647||1000
18|+|autovacuum_vacuum_max_threshold|integer||sighup|Vacuuming / Automatic Vacuuming|Maximum number of tuple updates or deletes prior to vacuum.|-1|2147483647||100000000
18|+|autovacuum_vacuum_scale_factor|real||sighup|Vacuuming / Automatic Vacuuming|Number of tuple updates or deletes prior to vacuum as a fraction of reltuples.|0|100||0.2
18|+|autovacuum_vacuum_threshold|integer||sighup|Vacuuming / Automatic Vacuuming|Minimum number of tuple updates or deletes prior to vacuum.|0|2147483647||50
18|+|autovacuum_worker_slots|integer||postmaster|Vacuuming / Automatic Vacuuming|Sets the number of backend slots to allocate for autovacuum workers.|1|262143||16
18|+|backend_flush_after|integer|8kB|user|Resource Usage / I/O|Number of pages after which previously performed writes are flushed to disk.|0|256||0
18|+|effective_io_concurrency|integer||user|Resource Usage / I/O|Number of simultaneous requests that can be handled efficiently by the disk subsystem.|0|1000||16
18|+|enable_distinct_reordering|bool||user|Query Tuning / Planner Method Configuration|Enables reordering of DISTINCT keys.||||on
18|+|enable_self_join_elimination|bool||user|Query Tuning / Planner Method Configuration|Enables removal of unique self-joins.||||on
18|+|extension_control_path|string||superuser|Client Connection Defaults / Other Defaults|Sets the path for extension control files.||||$system
18|+|file_copy_method|enum||user|Resource Usage / Disk|Selects the file copy method.|||copy,clone|copy
18|+|idle_replication_slot_timeout|integer|s|sighup|Replication / Sending Servers|Sets the duration a replication slot can remain idle before it is invalidated.|0|2147483647||0
18|+|io_combine_limit|integer|8kB|user|Resource Usage / I/O|Limit on the size of data reads and writes.|1|128||16
18|+|io_max_combine_limit|integer|8kB|postmaster|Resource Usage / I/O|Server-wide limit that clamps io_combine_limit.|1|128||16
18|+|io_max_concurrency|integer||postmaster|Resource Usage / I/O|Max number of IOs that one process can execute simultaneously.|-1|1024||-1
18|+|io_method|enum||postmaster|Resource Usage / I/O|Selects the method for executing asynchronous I/O.|||sync,worker|worker
18|+|io_workers|integer||sighup|Resource Usage / I/O|Number of IO worker processes, for io_method=worker.|1|32||3
18|+|log_connections|string||superuser-backend|Reporting and Logging / What to Log|Logs specified aspects of connection establishment and setup.||||
18|+|log_lock_failures|bool||superuser|Reporting and Logging / What to Log|Logs lock failures.||||off
18|+|log_min_duration_sample|integer|ms|superuser|Reporting and Logging / When to Log|Sets the minimum execution time above which a sample of statements will be logged. Sampling is determined by "log_statement_sample_rate".|-1|2147483647||-1
18|+|log_rotation_size|integer|kB|sighup|Reporting and Logging / Where to Log|Sets the maximum size a log file can reach before being rotated.|0|2147483647||10240
18|+|maintenance_io_concurrency|integer||user|Resource Usage / I/O|A variant of "effective_io_concurrency" that is used for maintenance work.|0|1000||16
18|+|max_active_replication_origins|integer||postmaster|Replication / Subscribers|Sets the maximum number of active replication origins.|0|262143||10
18|+|max_files_per_process|integer||postmaster|Resource Usage / Kernel Resources|Sets the maximum number of files each server process is allowed to open simultaneously.|64|2147483647||1000
18|+|max_parallel_maintenance_workers|integer||user|Resource Usage / Worker Processes|Sets the maximum number of parallel processes per maintenance operation.|0|1024||2
18|+|max_parallel_workers|integer||user|Resource Usage / Worker Processes|Sets the maximum number of parallel workers that can be active at one time.|0|1024||8
18|+|max_parallel_workers_per_gather|integer||user|Resource Usage / Worker Processes|Sets the maximum number of parallel processes per executor node.|0|1024||2
18|+|max_worker_processes|integer||postmaster|Resource Usage / Worker Processes|Maximum number of concurrent worker processes.|0|262143||8
18|+|md5_password_warnings|bool||user|Connections and Authentication / Authentication|Enables deprecation warnings for MD5 passwords.||||on
18|+|num_os_semaphores|integer||internal|Preset Options|Shows the number of semaphores required for the server.|0|2147483647||0
18|+|oauth_validator_libraries|string||sighup|Connections and Authentication / Authentication|Lists libraries that may be called to validate OAuth v2 bearer tokens.||||
18|+|parallel_leader_participation|bool||user|Resource Usage / Worker Processes|Controls whether Gather and Gather Merge also run subplans.||||on
18|+|row_security|bool||user|Client Connection Defaults / Statement Behavior|Enables row security.||||on
18|+|ssl_ciphers|string||sighup|Connections and Authentication / SSL|Sets the list of allowed TLSv1.2 (and lower) ciphers.||||HIGH:MEDIUM:+3DES:!aNULL
18|+|ssl_groups|string||sighup|Connections and Authentication / SSL|Sets the group(s) to use for Diffie-Hellman key exchange.||||X25519:prime256v1
18|+|ssl_tls13_ciphers|string||sighup|Connections and Authentication / SSL|Sets the list of allowed TLSv1.3 cipher suites.||||
18|+|synchronize_seqscans|bool||user|Version and Platform Compatibility / Previous PostgreSQL Versions|Enables synchronized sequential scans.||||on
18|+|track_cost_delay_timing|bool||superuser|Statistics / Cumulative Query and Index Statistics|Collects timing statistics for cost-based vacuum delay.||||off
18|+|vacuum_cost_delay|real|ms|user|Vacuuming / Cost-Based Vacuum Delay|Vacuum cost delay in milliseconds.|0|100||0
18|+|vacuum_cost_limit|integer||user|Vacuuming / Cost-Based Vacuum Delay|Vacuum cost amount available before napping.|1|10000||200
18|+|vacuum_cost_page_dirty|integer||user|Vacuuming / Cost-Based Vacuum Delay|Vacuum cost for a page dirtied by vacuum.|0|10000||20
18|+|vacuum_cost_page_hit|integer||user|Vacuuming / Cost-Based Vacuum Delay|Vacuum cost for a page found in the buffer cache.|0|10000||1
18|+|vacuum_cost_page_miss|integer||user|Vacuuming / Cost-Based Vacuum Delay|Vacuum cost for a page not found in the buffer cache.|0|10000||2
18|+|vacuum_failsafe_age|integer||user|Vacuuming / Freezing|Age at which VACUUM should trigger failsafe to avoid a wraparound outage.|0|2100000000||1600000000
18|+|vacuum_freeze_min_age|integer||user|Vacuuming / Freezing|Minimum age at which VACUUM should freeze a table row.|0|1000000000||50000000
18|+|vacuum_freeze_table_age|integer||user|Vacuuming / Freezing|Age at which VACUUM should scan whole table to freeze tuples.|0|2000000000||150000000
18|+|vacuum_max_eager_freeze_failure_rate|real||user|Vacuuming / Freezing|Fraction of pages in a relation vacuum can scan and fail to freeze before disabling eager scanning.|0|1||0.03
18|+|vacuum_multixact_failsafe_age|integer||user|Vacuuming / Freezing|Multixact age at which VACUUM should trigger failsafe to avoid a wraparound outage.|0|2100000000||1600000000
18|+|vacuum_multixact_freeze_min_age|integer||user|Vacuuming / Freezing|Minimum age at which VACUUM should freeze a MultiXactId in a table row.|0|1000000000||5000000
18|+|vacuum_multixact_freeze_table_age|integer||user|Vacuuming / Freezing|Multixact age at which VACUUM should scan whole table to freeze tuples.|0|2000000000||150000000
18|+|vacuum_truncate|bool||user|Vacuuming / Default Behavior|Enables vacuum to truncate empty pages at the end of the table.||||on
"""
