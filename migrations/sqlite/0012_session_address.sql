-- The address a browser session signed in from, as the console's sessions list
-- shows it (the client's address as rotor sees it, after server.trusted_proxies).
alter table browser_sessions add column ip text;
