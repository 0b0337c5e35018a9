/** The shape of the scaffold's fake CRM (templates/connector/test/fake-crm.ts), for a test that loads the built copy. */
export declare class FakeCrm {
  url: string;
  readonly token: string;
  readonly conversations: Map<string, { id: string; chatId: string; title: string }>;
  readonly notes: { id: string; conversationId: string; text: string; marker: string | null; author: 'manager' | 'integration'; createdAt: number }[];
  start(): Promise<void>;
  stop(): Promise<void>;
}
