--
-- PostgreSQL database dump
--

\restrict KzsZLoSwDLTNGp8Z6XlC4yI6rhYxvW0Nl6MwSvfhapJ6KB0ksldGIyaam1LbxCZ

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: Shop.V2; Type: DATABASE; Schema: -; Owner: postgres
--

CREATE DATABASE "Shop.V2" WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE_PROVIDER = libc LOCALE = 'C';


ALTER DATABASE "Shop.V2" OWNER TO postgres;

\unrestrict KzsZLoSwDLTNGp8Z6XlC4yI6rhYxvW0Nl6MwSvfhapJ6KB0ksldGIyaam1LbxCZ
\connect "Shop.V2"
\restrict KzsZLoSwDLTNGp8Z6XlC4yI6rhYxvW0Nl6MwSvfhapJ6KB0ksldGIyaam1LbxCZ

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: DATABASE "Shop.V2"; Type: COMMENT; Schema: -; Owner: postgres
--

COMMENT ON DATABASE "Shop.V2" IS 'x';


--
-- Name: Shop.V2; Type: DATABASE PROPERTIES; Schema: -; Owner: postgres
--

ALTER DATABASE "Shop.V2" SET work_mem TO '8MB';


\unrestrict KzsZLoSwDLTNGp8Z6XlC4yI6rhYxvW0Nl6MwSvfhapJ6KB0ksldGIyaam1LbxCZ
\connect "Shop.V2"
\restrict KzsZLoSwDLTNGp8Z6XlC4yI6rhYxvW0Nl6MwSvfhapJ6KB0ksldGIyaam1LbxCZ

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- PostgreSQL database dump complete
--

\unrestrict KzsZLoSwDLTNGp8Z6XlC4yI6rhYxvW0Nl6MwSvfhapJ6KB0ksldGIyaam1LbxCZ

