-- table sessions on sessions
CREATE TABLE sessions (
                id TEXT PRIMARY KEY,
                name TEXT,
                kind TEXT NOT NULL,
                parent_id TEXT,
                cwd TEXT NOT NULL,
                model TEXT NOT NULL,
                agent TEXT,
                permission_mode TEXT,
                state TEXT NOT NULL,
                reason TEXT,
                summary TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                host_id TEXT,
                epoch INTEGER NOT NULL DEFAULT 0,
                lease_expires_at REAL,
                meta TEXT NOT NULL DEFAULT '{}'
            , deleted_at REAL);
-- index sessions_state on sessions
CREATE INDEX sessions_state ON sessions (state);
-- index sessions_parent on sessions
CREATE INDEX sessions_parent ON sessions (parent_id);
-- index sessions_name on sessions
CREATE INDEX sessions_name ON sessions (name, updated_at);
-- index sessions_cwd on sessions
CREATE INDEX sessions_cwd ON sessions (cwd, updated_at);
-- index sessions_updated on sessions
CREATE INDEX sessions_updated ON sessions (updated_at);
-- table transcript on transcript
CREATE TABLE transcript (
                session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                kind TEXT NOT NULL,
                data TEXT NOT NULL,
                created_at REAL NOT NULL,
                PRIMARY KEY (session_id, seq)
            );
-- table events on events
CREATE TABLE events (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT,
                ts REAL NOT NULL,
                type TEXT NOT NULL,
                data TEXT NOT NULL DEFAULT '{}'
            );
-- table sqlite_sequence on sqlite_sequence
CREATE TABLE sqlite_sequence(name,seq);
-- index events_session on events
CREATE INDEX events_session ON events (session_id, id);
-- table commands on commands
CREATE TABLE commands (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT,
                ts REAL NOT NULL,
                type TEXT NOT NULL,
                data TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'pending',
                claimed_by TEXT,
                handled_at REAL,
                result TEXT
            );
-- index commands_pending on commands
CREATE INDEX commands_pending ON commands (session_id, id) WHERE status = 'pending';
-- index commands_session on commands
CREATE INDEX commands_session ON commands (session_id, id);
-- table usage on usage
CREATE TABLE usage (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                agent_path TEXT NOT NULL,
                model TEXT NOT NULL,
                input INTEGER NOT NULL,
                output INTEGER NOT NULL,
                cache_read INTEGER NOT NULL,
                cache_write INTEGER NOT NULL,
                cost_usd REAL NOT NULL,
                ts REAL NOT NULL
            );
-- index usage_session on usage
CREATE INDEX usage_session ON usage (session_id);
-- index usage_ts on usage
CREATE INDEX usage_ts ON usage (ts);
-- table tool_runs on tool_runs
CREATE TABLE tool_runs (
                session_id TEXT NOT NULL,
                pgid INTEGER NOT NULL,
                tag TEXT NOT NULL,
                started REAL NOT NULL,
                PRIMARY KEY (session_id, tag)
            );
-- table teams on teams
CREATE TABLE teams (
                id TEXT PRIMARY KEY,
                lead_session_id TEXT NOT NULL UNIQUE,
                next_task INTEGER NOT NULL DEFAULT 1,
                created_at REAL NOT NULL,
                ended_at REAL
            );
-- table team_members on team_members
CREATE TABLE team_members (
                team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                session_id TEXT NOT NULL UNIQUE,
                agent_type TEXT,
                owns TEXT NOT NULL DEFAULT '[]',
                isolation TEXT,
                joined_at REAL NOT NULL,
                PRIMARY KEY (team_id, name)
            );
-- table team_tasks on team_tasks
CREATE TABLE team_tasks (
                team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                id INTEGER NOT NULL,
                subject TEXT NOT NULL,
                description TEXT NOT NULL,
                active_form TEXT,
                status TEXT NOT NULL DEFAULT 'pending',
                owner TEXT,
                metadata TEXT NOT NULL DEFAULT '{}',
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (team_id, id)
            );
-- table team_task_blockers on team_task_blockers
CREATE TABLE team_task_blockers (
                team_id TEXT NOT NULL,
                task_id INTEGER NOT NULL,
                blocker_id INTEGER NOT NULL,
                PRIMARY KEY (team_id, task_id, blocker_id),
                FOREIGN KEY (team_id, task_id) REFERENCES team_tasks (team_id, id)
                    ON DELETE CASCADE,
                FOREIGN KEY (team_id, blocker_id) REFERENCES team_tasks (team_id, id)
                    ON DELETE CASCADE
            );
-- table team_mailbox on team_mailbox
CREATE TABLE team_mailbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
                kind TEXT NOT NULL DEFAULT 'message',
                sender TEXT NOT NULL,
                recipient TEXT NOT NULL,
                body TEXT NOT NULL,
                summary TEXT,
                sent_at REAL NOT NULL,
                delivered_at REAL,
                delivered_seq INTEGER
            );
-- index team_mailbox_undelivered on team_mailbox
CREATE INDEX team_mailbox_undelivered ON team_mailbox (team_id, recipient, id) WHERE delivered_at IS NULL;
-- table rate_buckets on rate_buckets
CREATE TABLE rate_buckets (
                endpoint TEXT NOT NULL,
                kind TEXT NOT NULL,
                lim INTEGER NOT NULL,
                remaining REAL NOT NULL,
                reset_at REAL,
                window_s REAL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (endpoint, kind)
            );
-- table rate_endpoints on rate_endpoints
CREATE TABLE rate_endpoints (
                endpoint TEXT PRIMARY KEY,
                blocked_until REAL NOT NULL DEFAULT 0,
                answered_at REAL
            );
-- table rate_queue on rate_queue
CREATE TABLE rate_queue (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                endpoint TEXT NOT NULL,
                holder TEXT NOT NULL,
                session_id TEXT,
                tokens INTEGER NOT NULL,
                granted_at REAL,
                seen_at REAL NOT NULL
            );
-- index rate_queue_endpoint on rate_queue
CREATE INDEX rate_queue_endpoint ON rate_queue (endpoint, id);
-- table replica_journal on replica_journal
CREATE TABLE replica_journal (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                session_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                data TEXT NOT NULL DEFAULT '{}',
                bundle BLOB,
                held INTEGER NOT NULL DEFAULT 0
            );
-- index replica_journal_session on replica_journal
CREATE INDEX replica_journal_session ON replica_journal (session_id, id);
-- table replica_holds on replica_holds
CREATE TABLE replica_holds (
                session_id TEXT PRIMARY KEY
            );
-- table replica_cursors on replica_cursors
CREATE TABLE replica_cursors (
                session_id TEXT PRIMARY KEY,
                epoch INTEGER NOT NULL,
                position INTEGER NOT NULL
            );
